"""/api/v1/ledgers/{ledger_id}/accounts: HTTP only; the rules live in the service."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/ledgers/{ledger_id}/accounts", tags=["accounts"])
