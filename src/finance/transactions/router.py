"""/api/v1/ledgers/{ledger_id}/transactions: HTTP only; the rules live in the service."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/ledgers/{ledger_id}/transactions", tags=["transactions"])
