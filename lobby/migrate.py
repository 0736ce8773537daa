"""Schema migrations: plain SQL files applied by yoyo-migrations.

Files live in `lobby/migrations/`, named `NNNN_topic.sql` (with an optional
`NNNN_topic.rollback.sql`); yoyo applies them in file-name order, each in its
own transaction, records what ran in its own tables and holds a lock so two
processes migrating at once do not race. `tradearena migrate` and the tests
call `apply_migrations`.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from yoyo import get_backend, read_migrations

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def yoyo_url(dsn: str) -> str:
    """A libpq-style URL (`postgresql://...`, as asyncpg takes) as yoyo's psycopg 3 URL."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgres", "postgresql", "postgresql+psycopg"):
        raise ValueError(f"not a PostgreSQL URL: scheme {parts.scheme!r}")
    return urlunsplit(parts._replace(scheme="postgresql+psycopg"))


def apply_migrations(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply every pending migration; returns the ids applied (empty when up to date)."""
    backend = get_backend(yoyo_url(dsn))
    migrations = read_migrations(str(directory))
    try:
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
            return [m.id for m in pending]
    finally:
        backend.connection.close()


def rollback_migrations(dsn: str, count: int, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Roll back the `count` most recently applied migrations."""
    backend = get_backend(yoyo_url(dsn))
    migrations = read_migrations(str(directory))
    try:
        with backend.lock():
            done = backend.to_rollback(migrations)[:count]
            backend.rollback_migrations(done)
            return [m.id for m in done]
    finally:
        backend.connection.close()
