"""Request and response bodies of the commodity endpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from finance.money import MAX_PRECISION
from finance.schemas import StrictModel

CommodityName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)
]
Precision = Annotated[
    int,
    Field(
        strict=True,
        ge=0,
        le=MAX_PRECISION,
        description="Decimal places an amount may have (0 to 18)",
    ),
]


class CommodityCreate(StrictModel):
    code: str = Field(
        min_length=1,
        max_length=24,
        description="ISO 4217 code (USD, JPY) or your own (ITOT, BTC, VACHR)",
        examples=["USD", "ITOT"],
    )
    name: CommodityName | None = None
    precision: Precision | None = Field(
        default=None,
        description="Required for a code that is not an ISO currency; for an ISO currency it "
        "defaults to the standard minor units and may only be larger",
    )


class CommodityUpdate(StrictModel):
    name: CommodityName | None = None
    precision: Precision | None = Field(
        default=None,
        description="May only be raised; every stored amount is rescaled exactly",
    )


class CommodityRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    code: str
    name: str | None
    precision: int
    created_at: datetime
    updated_at: datetime
