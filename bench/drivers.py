"""The raw drivers' settings, shared by the baselines; imports nothing of the app, so that the
baseline server starts in a fraction of the app's start-up time."""

from __future__ import annotations

import sqlite3

# The app's own connections turn JIT off (see finance.db); raw connections do the same.
POSTGRES_SERVER_SETTINGS = {"jit": "off", "application_name": "finance-bench-raw"}
# A replayed statement is planned for its parameters every time, as psql would plan it,
# instead of switching to a generic plan after five runs of a prepared statement.
REPLAY_SETTINGS = {**POSTGRES_SERVER_SETTINGS, "plan_cache_mode": "force_custom_plan"}
SQLITE_PRAGMAS = (
    "foreign_keys = ON",
    "journal_mode = WAL",
    "synchronous = FULL",
    "busy_timeout = 30000",
)


def connect_sqlite(path: str) -> sqlite3.Connection:
    """sqlite3 in autocommit mode, with the app's pragmas."""
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in SQLITE_PRAGMAS:
        conn.execute(f"PRAGMA {pragma}")
    return conn
