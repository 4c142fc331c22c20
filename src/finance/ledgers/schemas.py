"""Request and response bodies of the ledger, member and audit endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from finance.models import Role
from finance.schemas import StrictModel

LedgerName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
CommodityCode = Annotated[
    str,
    Field(
        min_length=1,
        max_length=24,
        description="An ISO 4217 code, or the code of one of the ledger's commodities",
        examples=["EUR"],
    ),
]


class LedgerCreate(StrictModel):
    name: LedgerName
    base_currency: CommodityCode = Field(
        description="The currency reports convert to; an ISO 4217 code when creating"
    )


class LedgerUpdate(StrictModel):
    name: LedgerName | None = None
    base_currency: CommodityCode | None = None


class LedgerFields(BaseModel):
    """The ledger itself, as the audit log keeps it."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    base_currency: str
    created_by: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class LedgerRead(LedgerFields):
    role: Role = Field(description="Your role in this ledger")


class MemberCreate(StrictModel):
    email: EmailStr = Field(description="The email of a registered user")
    role: Role


class MemberUpdate(StrictModel):
    role: Role


class MemberRead(BaseModel):
    user_id: uuid.UUID
    email: str
    display_name: str
    role: Role
    joined_at: datetime


class AuditEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    at: datetime
    user_id: uuid.UUID | None = Field(description="Who made the change (null: deleted user)")
    action: str = Field(examples=["create", "update", "delete"])
    object_type: str = Field(examples=["transaction", "account", "commodity", "member"])
    object_id: uuid.UUID
    before: dict[str, Any] | None
    after: dict[str, Any] | None
