"""All models, imported here so that Alembic and the metadata see every table."""

from finance.models.base import Base
from finance.models.imports import (
    CsvProfile,
    ImportBatch,
    ImportFormat,
    ImportLine,
    ImportStatus,
    LineOutcome,
)
from finance.models.ledger import (
    Account,
    AccountType,
    AuditEntry,
    BalanceAssertion,
    Commodity,
    IdempotencyKey,
    Ledger,
    LedgerMember,
    Posting,
    Price,
    Role,
    Transaction,
    TransactionStatus,
)
from finance.models.user import AuthToken, TokenKind, User

__all__ = [
    "Account",
    "AccountType",
    "AuditEntry",
    "AuthToken",
    "BalanceAssertion",
    "Base",
    "Commodity",
    "CsvProfile",
    "IdempotencyKey",
    "ImportBatch",
    "ImportFormat",
    "ImportLine",
    "ImportStatus",
    "Ledger",
    "LedgerMember",
    "LineOutcome",
    "Posting",
    "Price",
    "Role",
    "TokenKind",
    "Transaction",
    "TransactionStatus",
    "User",
]
