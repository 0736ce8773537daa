"""Migrations apply, are idempotent, roll back, and keep money exact."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from lobby.migrate import apply_migrations, rollback_migrations, yoyo_url
from tradearena.launcher.cli import main

TABLES = {
    "users",
    "player_settings",
    "refresh_tokens",
    "admin_audit",
    "matches",
    "match_players",
    "trades",
    "ledger_lines",
    "ratings",
    "notifications",
}


def _tables(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return {str(r[0]) for r in rows}


def test_yoyo_url_maps_libpq_urls() -> None:
    assert yoyo_url("postgresql://u@h:5/db") == "postgresql+psycopg://u@h:5/db"
    assert yoyo_url("postgres://u:p@h/db?sslmode=require") == (
        "postgresql+psycopg://u:p@h/db?sslmode=require"
    )


def test_apply_is_idempotent_and_rollback_undoes(empty_dsn: str) -> None:
    applied = apply_migrations(empty_dsn)
    assert applied[:2] == ["0001_accounts", "0002_matches"]
    assert _tables(empty_dsn) >= TABLES
    assert apply_migrations(empty_dsn) == []
    undone = rollback_migrations(empty_dsn, len(applied))
    assert sorted(undone) == sorted(applied)
    assert not (TABLES & _tables(empty_dsn))
    assert apply_migrations(empty_dsn) == applied


def test_cli_migrate_subcommand(empty_dsn: str, capsys: object) -> None:
    assert main(["migrate", "--database-url", empty_dsn]) == 0
    assert "users" in _tables(empty_dsn)
    assert main(["migrate", "--database-url", empty_dsn]) == 0


def test_money_columns_are_numeric(lobby_dsn: str) -> None:
    money = {
        ("matches", "final_price"),
        ("match_players", "equity"),
        ("match_players", "realized_pnl"),
        ("match_players", "fees"),
        ("trades", "qty"),
        ("trades", "price"),
        ("trades", "fee"),
        ("trades", "realized_pnl"),
        ("ledger_lines", "amount"),
    }
    with psycopg.connect(lobby_dsn) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public'"
        ).fetchall()
    types = {(str(t), str(c)): str(d) for t, c, d in rows}
    assert {types[col] for col in money} == {"numeric"}
    assert not [
        col
        for col, d in types.items()
        if d in ("real", "double precision") and col[0] not in ("ratings", "match_players")
    ]


def test_usernames_are_unique_ignoring_case(lobby_dsn: str) -> None:
    with psycopg.connect(lobby_dsn) as conn:
        conn.execute(
            "INSERT INTO users (username, username_canonical, password_hash)"
            " VALUES ('Alice', 'alice', 'x')"
        )
        try:
            conn.execute(
                "INSERT INTO users (username, username_canonical, password_hash)"
                " VALUES ('alice', 'alice', 'y')"
            )
        except psycopg.errors.UniqueViolation:
            conn.rollback()
        else:
            raise AssertionError("a case-variant username was accepted")


def test_canonical_usernames_backfilled_unique_and_rolled_back(empty_dsn: str) -> None:
    applied = apply_migrations(empty_dsn)
    undone = rollback_migrations(empty_dsn, len(applied) - applied.index("0003_usernames"))
    assert "0003_usernames" in undone
    with psycopg.connect(empty_dsn) as conn:
        # Rows from before the migration: it backfills them without any locale.
        conn.execute(
            "INSERT INTO users (username, password_hash)"
            " VALUES ('Alice', 'x'), ('BOB.SMITH-IX_9', 'x')"
        )
        conn.commit()
        assert "username_canonical" not in _columns(conn, "users")
    assert "0003_usernames" in apply_migrations(empty_dsn)
    with psycopg.connect(empty_dsn) as conn:
        rows = conn.execute("SELECT username, username_canonical FROM users").fetchall()
        assert sorted(rows) == [("Alice", "alice"), ("BOB.SMITH-IX_9", "bob.smith-ix_9")]
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "INSERT INTO users (username, username_canonical, password_hash)"
                " VALUES ('ALICE', 'alice', 'y')"
            )
        conn.rollback()
        with pytest.raises(psycopg.errors.NotNullViolation):
            conn.execute("INSERT INTO users (username, password_hash) VALUES ('carol', 'y')")
    rollback_migrations(empty_dsn, len(applied) - applied.index("0003_usernames"))
    with psycopg.connect(empty_dsn) as conn:
        assert "username_canonical" not in _columns(conn, "users")
        # the index it replaced is back
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO users (username, password_hash) VALUES ('ALICE', 'y')")


def _columns(conn: psycopg.Connection[Any], table: str) -> set[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,)
    ).fetchall()
    return {str(r[0]) for r in rows}
