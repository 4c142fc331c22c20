"""/api/v1/ledgers: HTTP only; the rules live in the service."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(prefix="/ledgers", tags=["ledgers"])
