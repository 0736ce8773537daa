"""Expand/contract: what a forward migration may do to the schema (pure; docs/migrations.md).

An upgrade migrates first (the chart's pre-upgrade hook), then replaces pods one by
one: for a while the previous release's lobby and results worker run on the new
schema, and after a `helm rollback` of the code they run on it for good. So a
migration only *expands*: new tables, new nullable columns (or NOT NULL with a
DEFAULT), new non-unique indexes, relaxed constraints, data backfills. Anything the
previous release could trip over is a *contract* step: dropping, renaming or retyping
something, making a column required, a new constraint or unique index on an existing
table, TRUNCATE. It ships in a later release than the code that stopped needing the
old shape, in a file of its own that says so and why in a comment line::

    -- contract: <why it is safe now: which release stopped using it>

`check_migration` reads one file's SQL and returns what it refuses; statements on a
table the same file creates are always fine (nothing older knows that table).
`check_directory` checks every forward file of a migrations directory (`*.rollback.sql`
undo files are exempt: they run only on purpose, with the code rolled back first).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

CONTRACT_MARKER = re.compile(r"^\s*--\s*contract:\s*(?P<reason>\S.*?)\s*$", re.I | re.M)
MIN_REASON_CHARS = 15  # "safe now" needs a sentence, not a word
_DOLLAR = re.compile(r"\$[A-Za-z_]*\$")


@dataclass(frozen=True)
class Statement:
    """One SQL statement: its code (comments and string contents blanked) and first line."""

    code: str
    line: int


@dataclass(frozen=True)
class Violation:
    migration: str
    line: int
    statement: str  # its first words, for the message
    reason: str

    def __str__(self) -> str:
        return f"{self.migration}:{self.line}: {self.reason}: {self.statement}"


def split_statements(sql: str) -> list[Statement]:
    """Statements at top-level `;`, skipping comments, strings, quoted identifiers and
    dollar-quoted bodies. Comments become spaces and string literals `''`, so the
    keywords left are the statement's own."""
    out: list[Statement] = []
    code: list[str] = []
    start_line: int | None = None
    line = 1
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c == "\n":
            line += 1
        if sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end
            code.append(" ")
            continue
        if sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            end = n if end < 0 else end + 2
            line += sql.count("\n", i, end)
            i = end
            code.append(" ")
            continue
        if start_line is None and not c.isspace() and c != ";":
            start_line = line
        if c == "'":
            j = i + 1
            while j < n:
                if sql[j] == "'" and sql.startswith("''", j):
                    j += 2
                    continue
                if sql[j] == "'":
                    break
                j += 1
            line += sql.count("\n", i, j)
            code.append("''")
            i = j + 1
            continue
        if c == '"':
            j = sql.find('"', i + 1)
            j = n if j < 0 else j
            code.append(sql[i : j + 1])
            line += sql.count("\n", i, j)
            i = j + 1
            continue
        dollar = _DOLLAR.match(sql, i)
        if dollar:
            tag = dollar.group(0)
            end = sql.find(tag, i + len(tag))
            end = n if end < 0 else end + len(tag)
            line += sql.count("\n", i, end)
            code.append("$$ $$")
            i = end
            continue
        if c == ";":
            text = " ".join("".join(code).split())
            if text and start_line is not None:
                out.append(Statement(text, start_line))
            code, start_line = [], None
            i += 1
            continue
        code.append(c)
        i += 1
    text = " ".join("".join(code).split())
    if text and start_line is not None:
        out.append(Statement(text, start_line))
    return out


_NAME = r'(?:"[^"]+"|[A-Za-z_][\w$]*)(?:\.(?:"[^"]+"|[A-Za-z_][\w$]*))?'
_CREATE_TABLE = re.compile(
    rf"^CREATE (?:UNLOGGED |TEMP |TEMPORARY )?TABLE (?:IF NOT EXISTS )?(?P<t>{_NAME})", re.I
)
_ALTER_TABLE = re.compile(rf"^ALTER TABLE (?:IF EXISTS )?(?:ONLY )?(?P<t>{_NAME}) (?P<a>.*)$", re.I)
_CREATE_UNIQUE = re.compile(
    rf"^CREATE UNIQUE INDEX (?:CONCURRENTLY )?(?:IF NOT EXISTS )?(?:{_NAME} )?ON (?:ONLY )?(?P<t>{_NAME})",
    re.I,
)
_DROP = re.compile(r"^DROP (?P<what>MATERIALIZED VIEW|[A-Z]+)\b", re.I)
_ALTER_OTHER_RENAME = re.compile(
    r"^ALTER (?:INDEX|VIEW|MATERIALIZED VIEW|SEQUENCE|TYPE|FUNCTION|SCHEMA|DOMAIN)\b.*\b"
    r"(?:RENAME|SET SCHEMA)\b",
    re.I,
)
_ADD_CONSTRAINT = re.compile(r"^ADD (?:CONSTRAINT|PRIMARY KEY|UNIQUE|CHECK|FOREIGN KEY|EXCLUDE)\b")
_ADD_COLUMN = re.compile(rf"^ADD (?:COLUMN )?(?:IF NOT EXISTS )?(?P<c>{_NAME})(?P<rest>.*)$")
_ALTER_COLUMN = re.compile(rf"^ALTER (?:COLUMN )?(?P<c>{_NAME}) (?P<rest>.*)$")


def _ident(name: str) -> str:
    """An identifier as PostgreSQL folds it; a schema prefix is dropped."""
    last = name.rsplit(".", 1)[-1]
    return last[1:-1] if last.startswith('"') else last.lower()


def _actions(text: str) -> list[str]:
    """ALTER TABLE's comma-separated actions (commas inside parentheses kept)."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]


@dataclass
class _Context:
    """What this file has created so far (new tables; new columns with a DEFAULT)."""

    new_tables: set[str]
    defaulted_columns: set[tuple[str, str]]


def _alter_table_action(table: str, action: str, ctx: _Context) -> str | None:
    upper = action.upper()
    if upper.startswith("RENAME") or upper.startswith("SET SCHEMA"):
        return "renames (the previous release still uses the old name)"
    if upper.startswith("DROP"):
        return "drops a column or constraint the previous release may still use"
    if _ADD_CONSTRAINT.match(upper):
        return "a new constraint on an existing table can refuse the previous release's writes"
    added = _ADD_COLUMN.match(action) if upper.startswith("ADD") else None
    if added:
        column, rest = _ident(added["c"]), added["rest"].upper()
        has_default = " DEFAULT " in f" {rest} " or "GENERATED" in rest
        if has_default:
            ctx.defaulted_columns.add((table, column))
        if ("NOT NULL" in rest or "PRIMARY KEY" in rest) and not has_default:
            return "a NOT NULL column without a DEFAULT fails the previous release's inserts"
        if re.search(r"\b(UNIQUE|REFERENCES|CHECK)\b", rest):
            return "a new column constraint can refuse the previous release's writes"
        return None
    altered = _ALTER_COLUMN.match(action) if upper.startswith("ALTER") else None
    if altered:
        column, rest = _ident(altered["c"]), altered["rest"].upper()
        if re.match(r"^(SET DATA )?TYPE\b", rest):
            return "changes a column's type under the previous release"
        if rest.startswith("DROP DEFAULT"):
            return "drops a DEFAULT the previous release's inserts may rely on"
        if rest.startswith("SET NOT NULL") and (table, column) not in ctx.defaulted_columns:
            return (
                "SET NOT NULL on a column without a DEFAULT from this file fails the"
                " previous release's inserts"
            )
    return None


def _statement_reason(stmt: Statement, ctx: _Context) -> str | None:
    code = stmt.code
    upper = code.upper()
    created = _CREATE_TABLE.match(code)
    if created:
        ctx.new_tables.add(_ident(created["t"]))
        return None
    if upper.startswith("TRUNCATE"):
        return "TRUNCATE removes rows the previous release reads"
    dropped = _DROP.match(code)
    if dropped:
        return f"DROP {dropped['what'].upper()} removes what the previous release may still use"
    if _ALTER_OTHER_RENAME.match(code):
        return "renames (the previous release still uses the old name)"
    unique = _CREATE_UNIQUE.match(code)
    if unique and _ident(unique["t"]) not in ctx.new_tables:
        return "a unique index on an existing table can refuse the previous release's writes"
    altered = _ALTER_TABLE.match(code)
    if altered:
        table = _ident(altered["t"])
        if table in ctx.new_tables:
            return None
        for action in _actions(altered["a"]):
            reason = _alter_table_action(table, action, ctx)
            if reason:
                return reason
    return None


def contract_reason(sql: str) -> str | None:
    """The file's `-- contract: <reason>` line, if it has one."""
    found = CONTRACT_MARKER.search(sql)
    return found["reason"] if found else None


def check_migration(name: str, sql: str) -> list[Violation]:
    """What this forward migration may not do (empty: it only expands, or it is a
    declared contract step with a reason)."""
    reason = contract_reason(sql)
    if reason is not None and len(reason) >= MIN_REASON_CHARS:
        return []
    ctx = _Context(new_tables=set(), defaulted_columns=set())
    found = []
    for stmt in split_statements(sql):
        why = _statement_reason(stmt, ctx)
        if why:
            found.append(Violation(name, stmt.line, " ".join(stmt.code.split()[:8]), why))
    if found and reason is not None:
        short = f"the contract reason {reason!r} is too short: say which release stopped using it"
        found.insert(0, Violation(name, 1, "-- contract:", short))
    return found


def is_forward(path: Path) -> bool:
    return path.suffix == ".sql" and not path.name.endswith(".rollback.sql")


def check_directory(directory: Path) -> list[Violation]:
    """Every forward migration of `directory`, in file-name order (yoyo's)."""
    found: list[Violation] = []
    for path in sorted(p for p in directory.iterdir() if is_forward(p)):
        found += check_migration(path.name, path.read_text())
    return found
