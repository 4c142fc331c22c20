"""Argon2id password hashing (argon2-cffi), with hashes upgraded when the cost is raised.

Hashing is deliberately slow and memory-hungry, so it runs on a small pool of its own threads:
the event loop keeps serving other requests meanwhile (argon2-cffi releases the GIL), and a
flood of sign-ins queues instead of allocating the memory cost once per concurrent attempt.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from finance.config import Settings

_HASHING = ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1), thread_name_prefix="argon2")


@lru_cache(maxsize=8)
def _hasher(time_cost: int, memory_kib: int, parallelism: int) -> PasswordHasher:
    return PasswordHasher(
        time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
    )


def hasher(settings: Settings) -> PasswordHasher:
    return _hasher(
        settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
    )


def _verify(hasher: PasswordHasher, stored_hash: str, password: str) -> bool:
    try:
        return hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def hash_password(settings: Settings, password: str) -> str:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_HASHING, hasher(settings).hash, password)


async def verify_password(settings: Settings, stored_hash: str, password: str) -> bool:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_HASHING, _verify, hasher(settings), stored_hash, password)


def needs_rehash(settings: Settings, stored_hash: str) -> bool:
    return hasher(settings).check_needs_rehash(stored_hash)


async def spend_a_verification(settings: Settings, password: str) -> None:
    """Take the time of a real check when there is no account, so a miss looks like a hit."""
    loop = asyncio.get_running_loop()
    params = (settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism)
    await loop.run_in_executor(_HASHING, _verify_dummy, params, password)


def _verify_dummy(params: tuple[int, int, int], password: str) -> None:
    _verify(_hasher(*params), _dummy_hash(*params), password)


@lru_cache(maxsize=8)
def _dummy_hash(time_cost: int, memory_kib: int, parallelism: int) -> str:
    return _hasher(time_cost, memory_kib, parallelism).hash("not a real password")
