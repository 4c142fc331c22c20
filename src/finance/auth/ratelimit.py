"""Login throttling per account and per client address (the `limits` library).

In memory by default; shared through Redis when `FINANCE_REDIS_URL` is set, so that several
workers count together.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from finance.config import Settings
from finance.errors import TooManyRequests


@dataclass
class LoginLimiter:
    limiter: MovingWindowRateLimiter
    per_account: RateLimitItem
    per_client: RateLimitItem

    async def check(self, email: str, client: str) -> None:
        """Before a sign-in: 429 with `Retry-After` once either budget is spent.

        Every attempt counts against the client address; only failures count against the
        account (see `failed`), so a person who signs in successfully spends nothing and
        nothing ever has to be cleared.
        """
        account = f"account:{email}"
        if not await self.limiter.test(self.per_account, "login", account):
            await self._refuse(self.per_account, account)
        address = f"client:{client}"
        if not await self.limiter.hit(self.per_client, "login", address):
            await self._refuse(self.per_client, address)

    async def failed(self, email: str) -> None:
        """Count a failed sign-in against the account."""
        await self.limiter.hit(self.per_account, "login", f"account:{email}")

    async def _refuse(self, item: RateLimitItem, key: str) -> None:
        stats = await self.limiter.get_window_stats(item, "login", key)
        raise TooManyRequests(
            "Too many sign-in attempts; wait before trying again",
            retry_after=math.ceil(stats.reset_time - time.time()),
        )


def create_login_limiter(settings: Settings) -> LoginLimiter:
    storage: Storage
    if settings.redis_url:
        url = settings.redis_url
        if not url.startswith("async+"):
            url = "async+" + url
        created = storage_from_string(url)
        assert isinstance(created, Storage)
        storage = created
    else:
        storage = MemoryStorage()
    return LoginLimiter(
        limiter=MovingWindowRateLimiter(storage),
        per_account=parse(settings.login_rate_per_account),
        per_client=parse(settings.login_rate_per_client),
    )
