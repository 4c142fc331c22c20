"""Every API router, in the order requests are matched, and the order the docs show them in."""

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

# FastAPI tries the routes one after another: trying the 25 routes that stood before the
# transactions ones cost a seventh of the work of writing a transaction (measured in function
# calls), so the busiest routers come first.
API_ROUTERS: list[APIRouter] = [
    transactions_router,
    balances_router,
    reports_router,
    accounts_router,
    commodities_router,
    prices_router,
    ledgers_router,
    imports_router,
    exports_router,
    users_router,
    auth_router,
]

# The order of the sections of the OpenAPI document and /docs.
OPENAPI_TAGS: list[dict[str, str]] = [
    {"name": name}
    for name in (
        "auth",
        "users",
        "ledgers",
        "commodities",
        "accounts",
        "transactions",
        "balances",
        "prices",
        "imports",
        "exports",
        "reports",
        "operations",
    )
]
