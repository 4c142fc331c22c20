"""Test helpers for the books: a ledger with accounts made through the API, and transactions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import BaseModel
from sqlalchemy import func, select

from finance.db import Database
from finance.models import AuditEntry, BalanceAssertion, Commodity, Posting, Price, Transaction
from tests.conftest import AuthedUser

API = "/api/v1"


@dataclass
class Books:
    """A ledger, its owner, and its accounts by name."""

    client: httpx.AsyncClient
    owner: AuthedUser
    ledger_id: str
    accounts: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"{API}/ledgers/{self.ledger_id}"

    def id(self, name: str) -> str:
        return self.accounts[name]

    async def account(self, name: str, **fields: Any) -> str:
        response = await self.client.post(
            f"{self.url}/accounts", json={"name": name, **fields}, headers=self.owner.headers
        )
        assert response.status_code == 201, response.text
        self.accounts[name] = response.json()["id"]
        return self.accounts[name]

    async def commodity(self, code: str, precision: int) -> None:
        response = await self.client.post(
            f"{self.url}/commodities",
            json={"code": code, "precision": precision},
            headers=self.owner.headers,
        )
        assert response.status_code == 201, response.text

    def body(self, date: str, *postings: tuple[Any, ...], **fields: Any) -> dict[str, Any]:
        """A transaction body; each posting is (account name, amount, commodity[, extra])."""
        legs = []
        for posting in postings:
            name, amount, commodity, *rest = posting
            leg: dict[str, Any] = {"account_id": self.accounts[name]}
            if amount is not None:
                leg["amount"] = amount
            if commodity is not None:
                leg["commodity"] = commodity
            if rest:
                leg.update(rest[0])
            legs.append(leg)
        return {"date": date, **fields, "postings": legs}

    async def post(
        self, date: str, *postings: tuple[Any, ...], user: AuthedUser | None = None, **fields: Any
    ) -> httpx.Response:
        return await self.client.post(
            f"{self.url}/transactions",
            json=self.body(date, *postings, **fields),
            headers=(user or self.owner).headers,
        )

    async def create(self, date: str, *postings: tuple[Any, ...], **fields: Any) -> dict[str, Any]:
        response = await self.post(date, *postings, **fields)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def get(self, path: str, **params: Any) -> Any:
        response = await self.client.get(
            f"{self.url}{path}", params=params, headers=self.owner.headers
        )
        assert response.status_code == 200, response.text
        return response.json()

    async def get_as(self, model: type[BaseModel], path: str, **params: Any) -> Any:
        """`get` of an answer the service builds as plain data, held to its response model:
        it validates, and the model writes it back byte for byte (same keys in the same
        order, same formats)."""
        response = await self.client.get(
            f"{self.url}{path}", params=params, headers=self.owner.headers
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        assert model.model_validate_json(response.content).model_dump_json() == response.text
        return response.json()


async def open_books(
    client: httpx.AsyncClient, owner: AuthedUser, *accounts: str, base: str = "USD"
) -> Books:
    response = await client.post(
        f"{API}/ledgers", json={"name": "Home", "base_currency": base}, headers=owner.headers
    )
    assert response.status_code == 201, response.text
    books = Books(client=client, owner=owner, ledger_id=response.json()["id"])
    for name in accounts:
        await books.account(name)
    return books


async def add_member(books: Books, member: AuthedUser, role: str) -> None:
    response = await books.client.post(
        f"{books.url}/members",
        json={"email": member.email, "role": role},
        headers=books.owner.headers,
    )
    assert response.status_code == 201, response.text


async def counts(database: Database) -> dict[str, int]:
    """Rows of every table a finance write touches: a refused request changes none."""
    async with database.sessions() as session:
        return {
            model.__tablename__: await session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Transaction, Posting, BalanceAssertion, Price, Commodity, AuditEntry)
        }
