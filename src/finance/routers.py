"""Every API router, in the order they appear in the OpenAPI document."""

from fastapi import APIRouter

from finance.auth.router import router as auth_router
from finance.users.router import router as users_router

API_ROUTERS: list[APIRouter] = [
    auth_router,
    users_router,
]
