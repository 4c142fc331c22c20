"""Opaque bearer tokens: random secrets handed out once, stored only as SHA-256."""

from __future__ import annotations

import hashlib
import secrets

SESSION_PREFIX = "fs_"  # from a sign-in
PERSONAL_PREFIX = "fp_"  # a personal access token


def new_token(prefix: str) -> str:
    return prefix + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Tokens carry 256 random bits, so a plain (unsalted, fast) hash is safe and indexable."""
    return hashlib.sha256(token.encode()).hexdigest()
