"""Login throttling per account and per client address (the `limits` library).

In memory by default; shared through Redis when `FINANCE_REDIS_URL` is set, so that several
workers count together.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from finance.config import Settings
from finance.errors import TooManyRequests


@dataclass
class LoginLimiter:
    limiter: MovingWindowRateLimiter
    per_account: RateLimitItem
    per_client: RateLimitItem

    async def check(self, email: str, client: str) -> None:
        """Count one login attempt; 429 with `Retry-After` once either budget is spent."""
        for item, key in (
            (self.per_account, f"account:{email}"),
            (self.per_client, f"client:{client}"),
        ):
            if not await self.limiter.hit(item, "login", key):
                stats = await self.limiter.get_window_stats(item, "login", key)
                retry_after = math.ceil(stats.reset_time - time.time())
                raise TooManyRequests(
                    "Too many sign-in attempts; wait before trying again",
                    retry_after=retry_after,
                )

    async def reset(self, email: str) -> None:
        """A successful sign-in clears the account's counter (not the address's)."""
        await self.limiter.clear(self.per_account, "login", f"account:{email}")


def create_login_limiter(settings: Settings) -> LoginLimiter:
    storage: Storage
    if settings.redis_url:
        url = settings.redis_url
        if not url.startswith("async+"):
            url = "async+" + url
        created = storage_from_string(url)
        assert isinstance(created, Storage)
        storage = created
    else:
        storage = MemoryStorage()
    return LoginLimiter(
        limiter=MovingWindowRateLimiter(storage),
        per_account=parse(settings.login_rate_per_account),
        per_client=parse(settings.login_rate_per_client),
    )
