"""Request and response bodies of prices."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, Field

from finance.schemas import StrictModel
from finance.transactions.schemas import CommodityCode, LedgerDate, RateString


class PriceIn(StrictModel):
    date: LedgerDate
    commodity: CommodityCode = Field(description="What is priced", examples=["ITOT"])
    quote_commodity: CommodityCode = Field(description="What it is priced in", examples=["USD"])
    amount: RateString = Field(description="Units of quote_commodity for one unit, exact")


class PriceOut(BaseModel):
    id: uuid.UUID
    date: dt.date
    commodity: str
    quote_commodity: str
    amount: str = Field(description="Exactly as given", examples=["98.38"])
    created_at: dt.datetime
