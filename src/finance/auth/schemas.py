"""Request and response bodies of the auth and user endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from finance.schemas import StrictModel

DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
# Bounded so that hashing cannot be used to burn CPU; the minimum comes from the settings.
Password = Annotated[str, Field(max_length=1024)]


class RegisterRequest(StrictModel):
    email: EmailStr
    password: Password
    display_name: DisplayName


class UserRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    display_name: str
    is_admin: bool
    is_active: bool
    created_at: datetime


class UserUpdateMe(StrictModel):
    display_name: DisplayName | None = None
    current_password: Password | None = None
    new_password: Password | None = None


class UserUpdateAdmin(StrictModel):
    is_active: bool | None = None
    is_admin: bool | None = None


class AccessToken(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 scheme name, not a secret
    expires_in: int = Field(description="Seconds until the token expires")


class PersonalTokenCreate(StrictModel):
    name: DisplayName
    expires_at: datetime | None = Field(
        default=None, description="When the token stops working; at most the configured maximum"
    )


class PersonalTokenRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class PersonalTokenCreated(PersonalTokenRead):
    token: str = Field(description="The secret, shown only this once")
