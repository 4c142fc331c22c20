"""Opaque bearer tokens: random secrets handed out once, stored only as a keyed SHA-256."""

from __future__ import annotations

import hashlib
import hmac
import secrets

SESSION_PREFIX = "fs_"  # from a sign-in
PERSONAL_PREFIX = "fp_"  # a personal access token


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_token(key: bytes, token: str) -> str:
    """HMAC-SHA256 of the token under the server's secret key.

    Tokens carry 256 random bits, so a fast hash is safe and can be indexed for the per-request
    lookup. Keying it with the secret means a copy of the database alone cannot even test a
    guessed token, and rotating `FINANCE_SECRET_KEY` signs every client out at once.
    """
    return hmac.new(key, token.encode(), hashlib.sha256).hexdigest()
