"""Every API router, in the order they appear in the OpenAPI document."""

from fastapi import APIRouter

from finance.accounts.router import router as accounts_router
from finance.auth.router import router as auth_router
from finance.balances.router import router as balances_router
from finance.commodities.router import router as commodities_router
from finance.exports.router import router as exports_router
from finance.imports.router import router as imports_router
from finance.ledgers.router import router as ledgers_router
from finance.prices.router import router as prices_router
from finance.reports.router import router as reports_router
from finance.transactions.router import router as transactions_router
from finance.users.router import router as users_router

API_ROUTERS: list[APIRouter] = [
    auth_router,
    users_router,
    ledgers_router,
    commodities_router,
    accounts_router,
    transactions_router,
    balances_router,
    prices_router,
    imports_router,
    exports_router,
    reports_router,
]
