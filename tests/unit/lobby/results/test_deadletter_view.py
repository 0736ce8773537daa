"""The dead letter's entries and what `tradearena dlq` selects and prints, without I/O."""

from __future__ import annotations

import json

import pytest

from lobby.results.deadletter_view import (
    Selection,
    SelectionError,
    age_text,
    row,
    show,
    show_document,
    summary,
    table,
    unknown,
)
from tradearena.contracts.deadletter import (
    REDRIVEN_FROM_FIELD,
    RESULT_FIELD,
    DeadLetter,
    Reason,
    dead_letter_fields,
    entry_ms,
)

AT = 1_790_000_000_000


def letter(
    entry_id: str = f"{AT}-0",
    reason: Reason = Reason.STORE_FAILED,
    payload: bytes | None = b'{"match_id": "m-1", "schema_version": 1}',
    **others: str,
) -> DeadLetter:
    original = {**others, **({RESULT_FIELD: payload} if payload is not None else {})}
    fields = dead_letter_fields("1789-0", original, reason, "ForeignKeyViolationError('x')")
    raw = {k.encode(): v.encode() if isinstance(v, str) else v for k, v in fields.items()}
    return DeadLetter.from_stream(entry_id.encode(), raw)


def test_an_entry_round_trips_through_its_stream_fields() -> None:
    d = letter(traceparent="00-abc-def-01")
    assert d.original_id == "1789-0" and d.reason == "store_failed"
    assert d.match_id == "m-1" and d.dead_lettered_ms == AT
    assert d.fields == {"traceparent": "00-abc-def-01"}
    assert d.redrive_fields() == {
        "traceparent": "00-abc-def-01",
        RESULT_FIELD: b'{"match_id": "m-1", "schema_version": 1}',
        REDRIVEN_FROM_FIELD: f"{AT}-0",
    }


def test_an_entry_without_result_redrives_without_one_and_has_no_match() -> None:
    d = letter(reason=Reason.MISSING_RESULT, payload=None, other="x")
    assert d.match_id is None
    assert RESULT_FIELD not in d.redrive_fields()
    assert d.document()["result"] is None


@pytest.mark.parametrize("payload", [b"{not json", b"[1]", b'{"match_id": 7}', b""])
def test_no_match_id_without_a_json_object_naming_one(payload: bytes) -> None:
    assert letter(payload=payload).match_id is None


def test_a_payload_postgresql_cannot_hold_as_text_is_kept_as_hex() -> None:
    for raw in (b"\xff\xfe", b"a\x00b"):
        doc = letter(payload=raw).document()
        assert doc["result_hex"] == raw.hex() and "result" not in doc
        json.dumps(doc)  # the audit row's payload


def test_error_is_cut_and_reason_codes_are_stable() -> None:
    fields = dead_letter_fields("1-0", {}, Reason.BAD_JSON, "x" * 5000)
    assert len(fields["error"]) == 2000 and fields["reason"] == "bad_json"
    assert [r.value for r in Reason] == [
        "missing_result",
        "bad_json",
        "unknown_schema_version",
        "invalid_result",
        "unknown_mode",
        "invalid_player",
        "store_failed",
        "too_many_deliveries",
    ]


@pytest.mark.parametrize("bad", ["", "abc", "12", "12-", "-3", "12-x", "1 2-0"])
def test_entry_ids_are_checked(bad: str) -> None:
    with pytest.raises(ValueError, match="not a stream entry id"):
        entry_ms(bad)


def test_selection_needs_exactly_one_selector_and_valid_distinct_ids() -> None:
    for kwargs in ({}, {"ids": ("1-0",), "every": True}, {"reason": "bad_json", "every": True}):
        with pytest.raises(SelectionError, match="exactly one"):
            Selection(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(SelectionError, match="not a stream entry id"):
        Selection(ids=("1-0", "nope"))
    with pytest.raises(SelectionError, match="twice"):
        Selection(ids=("1-0", "1-0"))
    bad, failed = letter(reason=Reason.BAD_JSON), letter()
    assert Selection(reason="bad_json").wants(bad) and not Selection(reason="bad_json").wants(
        failed
    )
    assert Selection(every=True).wants(failed)
    assert unknown(["1-0", f"{AT}-0", "2-0"], [failed]) == ["1-0", "2-0"]


def test_ages_and_summaries_are_compact() -> None:
    assert [age_text(s) for s in (-1, 42, 420, 3 * 3600 + 720, 2 * 86400 + 4 * 3600)] == [
        "0s",
        "42s",
        "7m",
        "3h12m",
        "2d4h",
    ]
    assert summary("a\n  b\tc") == "a b c"
    assert summary("y" * 100, width=10) == "yyyyyyy..."


def test_table_lists_id_age_match_reason_and_error() -> None:
    rows = [letter(), letter(f"{AT + 1}-0", Reason.BAD_JSON, b"{oops")]
    text = table(rows, AT + 90_000, total=5).splitlines()
    assert text[0].split() == ["ID", "AGE", "MATCH", "REASON", "ERROR"]
    assert text[1].split()[:4] == [f"{AT}-0", "1m", "m-1", "store_failed"]
    assert text[2].split()[:4] == [f"{AT + 1}-0", "1m", "-", "bad_json"]
    assert "ForeignKeyViolationError('x')" in text[1]
    assert text[-1] == "2 shown, 5 in the dead letter"
    assert row(rows[0], AT + 1500)["age_s"] == 1.5


def test_show_gives_the_whole_entry_and_the_payload() -> None:
    d = letter(traceparent="00-abc-def-01")
    text = show(d, AT + 5000)
    assert "reason:          store_failed" in text and "(5s ago)" in text
    assert "field traceparent: 00-abc-def-01" in text
    assert '"match_id": "m-1"' in text  # pretty JSON
    doc = show_document(d, AT)
    assert doc["result"] == '{"match_id": "m-1", "schema_version": 1}'
    assert doc["original_id"] == "1789-0" and doc["error"].startswith("ForeignKey")
