"""The framework's own cost: the write benchmark's POST answered by FastAPI alone.

The same stack as the API (FastAPI on uvicorn, one worker), the same route and the API's own
request model (`TransactionIn`: strict fields, decimal strings, the NUL checks), answering 201
with a small JSON body, and touching no database. Its rate against the raw-driver app shows
how much of the write benchmark's budget the framework spends before any of the API's work.

Served like the others: `uvicorn bench.framework_app:create_app --factory`.
"""

from __future__ import annotations

import uuid

from fastapi import FastAPI, status
from pydantic import BaseModel

from finance.transactions.schemas import TransactionIn


class Created(BaseModel):
    id: uuid.UUID
    postings: int


def create_app() -> FastAPI:
    app = FastAPI()

    @app.post("/ledgers/{ledger_id}/transactions", status_code=status.HTTP_201_CREATED)
    async def create(ledger_id: uuid.UUID, body: TransactionIn) -> Created:
        return Created(id=uuid.uuid4(), postings=len(body.postings))

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
