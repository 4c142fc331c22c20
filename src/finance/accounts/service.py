"""Accounts: a hierarchy named by full paths (`Assets:Bank:Checking`)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from finance.errors import NotFound
from finance.models import Account


async def get_account(
    session: AsyncSession, ledger_id: uuid.UUID, account_id: uuid.UUID
) -> Account:
    """The ledger's account, or 404 (also for another ledger's account)."""
    account = await session.get(Account, (ledger_id, account_id))
    if account is None:
        raise NotFound("No such account")
    return account
