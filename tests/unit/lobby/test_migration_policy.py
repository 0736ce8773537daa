"""The expand/contract policy of forward migrations (lobby.migration_policy, pure)."""

from __future__ import annotations

import pytest

from lobby.migrate import MIGRATIONS_DIR
from lobby.migration_policy import check_directory, check_migration, split_statements


def reasons(sql: str) -> list[str]:
    return [v.reason for v in check_migration("9999_next.sql", sql)]


def test_every_shipped_migration_only_expands_or_declares_its_contract() -> None:
    found = check_directory(MIGRATIONS_DIR)
    assert found == [], "\n".join(map(str, found))
    forward = [p for p in MIGRATIONS_DIR.glob("*.sql") if not p.name.endswith(".rollback.sql")]
    assert len(forward) >= 6  # the directory really was read


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE match_comments (id bigint PRIMARY KEY, body text NOT NULL);",
        "ALTER TABLE users ADD COLUMN country text;",
        "ALTER TABLE users ADD COLUMN flags integer NOT NULL DEFAULT 0;",
        "ALTER TABLE matches ADD COLUMN region text, ADD COLUMN seats smallint;",
        "ALTER TABLE users ADD COLUMN n bigint GENERATED ALWAYS AS IDENTITY;",
        "CREATE INDEX CONCURRENTLY matches_region ON matches (region);",
        "ALTER TABLE users ALTER COLUMN ban_reason DROP NOT NULL;",
        "ALTER TABLE users ALTER COLUMN role SET DEFAULT 'player';",
        "UPDATE users SET username_canonical = lower(username);",
        "CREATE VIEW recent AS SELECT id FROM matches;",
        # A new column made required in the same file once it has a default and a backfill.
        "ALTER TABLE users ADD COLUMN tier text DEFAULT 'free';\n"
        "UPDATE users SET tier = 'free';\n"
        "ALTER TABLE users ALTER COLUMN tier SET NOT NULL;",
        # Anything on a table this file creates: nothing older knows it.
        "CREATE TABLE t (a int);\nALTER TABLE t ADD COLUMN b int NOT NULL;\n"
        "ALTER TABLE t RENAME COLUMN a TO c;\nCREATE UNIQUE INDEX t_b ON t (b);",
        # Keywords inside comments, strings and function bodies are not statements.
        "-- DROP TABLE users;\n/* ALTER TABLE users RENAME TO people; */\n"
        "INSERT INTO notifications (user_id, kind) SELECT id, 'DROP TABLE users' FROM users;\n"
        "CREATE FUNCTION f() RETURNS void AS $body$ BEGIN TRUNCATE users; END $body$"
        " LANGUAGE plpgsql;",
    ],
)
def test_expand_steps_pass(sql: str) -> None:
    assert reasons(sql) == []


@pytest.mark.parametrize(
    ("sql", "why"),
    [
        ("DROP TABLE trades;", "DROP TABLE"),
        ("DROP VIEW IF EXISTS leaderboard_results;", "DROP VIEW"),
        ("DROP INDEX users_username_key;", "DROP INDEX"),
        ("ALTER TABLE users DROP COLUMN ban_reason;", "drops a column"),
        ("ALTER TABLE users DROP ban_reason;", "drops a column"),
        ("ALTER TABLE match_players DROP CONSTRAINT match_players_rank_check;", "drops"),
        ("ALTER TABLE users RENAME COLUMN username TO handle;", "renames"),
        ("ALTER TABLE users RENAME TO accounts;", "renames"),
        ("ALTER INDEX users_username_key RENAME TO users_name_key;", "renames"),
        ("ALTER TABLE trades ALTER COLUMN qty TYPE double precision;", "type"),
        ("ALTER TABLE trades ALTER qty SET DATA TYPE text;", "type"),
        ("ALTER TABLE users ALTER COLUMN banned_at SET NOT NULL;", "SET NOT NULL"),
        ("ALTER TABLE users ADD COLUMN country text NOT NULL;", "NOT NULL column"),
        (
            "ALTER TABLE users ADD COLUMN c text;\nALTER TABLE users ALTER COLUMN c SET NOT NULL;",
            "SET NOT NULL",
        ),
        ("ALTER TABLE users ALTER COLUMN role DROP DEFAULT;", "DEFAULT"),
        ("ALTER TABLE users ADD CONSTRAINT short CHECK (length(username) < 9);", "constraint"),
        ("ALTER TABLE users ADD COLUMN team uuid REFERENCES users (id);", "constraint"),
        ("CREATE UNIQUE INDEX users_email ON users (email);", "unique index"),
        ("TRUNCATE notifications;", "TRUNCATE"),
        # One bad action among several, after a harmless one.
        ("ALTER TABLE matches ADD COLUMN a int, DROP COLUMN reason;", "drops a column"),
        ('ALTER TABLE "Users" RENAME COLUMN "Name" TO n;', "renames"),
    ],
)
def test_contract_steps_are_refused(sql: str, why: str) -> None:
    found = reasons(sql)
    assert len(found) == 1, found
    assert why.lower() in found[0].lower(), found


def test_a_declared_contract_step_passes_with_a_reason_only() -> None:
    step = "ALTER TABLE users DROP COLUMN ban_reason;"
    declared = "-- contract: 0.4.0 stopped reading ban_reason (it reads bans)\n" + step
    assert check_migration("0200_drop_ban_reason.sql", declared) == []
    found = check_migration("0200_drop_ban_reason.sql", "-- contract: safe\n" + step)
    assert [v.line for v in found] == [1, 2]
    assert "too short" in found[0].reason
    # The marker must be a comment line of its own, not a word in a statement.
    assert reasons("ALTER TABLE users DROP COLUMN contract;") != []


def test_violations_name_file_line_and_statement() -> None:
    sql = "-- a comment\nCREATE TABLE t (a int);\n\n'x';\nDROP TABLE\n  users;\n"
    (found,) = check_migration("0300_x.sql", sql)
    assert (found.migration, found.line) == ("0300_x.sql", 5)
    assert str(found).startswith("0300_x.sql:5: DROP TABLE")
    assert found.statement == "DROP TABLE users"


def test_statements_split_outside_strings_comments_and_bodies() -> None:
    sql = (
        "INSERT INTO t VALUES ('a;b', 'it''s');\n"
        '-- x; y\nCREATE TABLE "a;b" (c int); /* ; */\n'
        "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;\nSELECT 2"
    )
    got = [(s.line, s.code) for s in split_statements(sql)]
    assert got == [
        (1, "INSERT INTO t VALUES ('', '')"),
        (3, 'CREATE TABLE "a;b" (c int)'),
        (4, "CREATE FUNCTION f() RETURNS int AS $$ $$ LANGUAGE sql"),
        (5, "SELECT 2"),
    ]
