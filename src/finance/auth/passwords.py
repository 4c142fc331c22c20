"""Argon2id password hashing (argon2-cffi), with hashes upgraded when the cost is raised."""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from finance.config import Settings


@lru_cache(maxsize=8)
def _hasher(time_cost: int, memory_kib: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(
        time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
    )


def hasher(settings: Settings) -> PasswordHasher:
    return _hasher(
        settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
    )


def hash_password(settings: Settings, password: str) -> str:
    return hasher(settings).hash(password)


def verify_password(settings: Settings, stored_hash: str, password: str) -> bool:
    try:
        return hasher(settings).verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(settings: Settings, stored_hash: str) -> bool:
    return hasher(settings).check_needs_rehash(stored_hash)


# Verified against when the email is unknown, so that a miss costs as much time as a hit.
@lru_cache(maxsize=8)
def _dummy_hash(time_cost: int, memory_kib: int, parallelism: int) -> str:
    return _hasher(time_cost, memory_kib, parallelism).hash("not a real password")


def dummy_hash(settings: Settings) -> str:
    return _dummy_hash(
        settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
    )
