"""The pure parts of tracing: reading the OTEL_* environment, traceparent strings to span
contexts and back, trace ids on log lines, and each carrier of the trace context
(queue ticket, assignment, Match resource, server settings, the operator's spec)."""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from lobby.matchmaking.planner import Ticket
from lobby.matchmaking.queues import decode_ticket, encode_ticket
from match_operator.builders import match_spec
from matchserver.host import dedicated_assignment
from matchserver.settings import MatchServerSettings
from tradearena import tracing
from tradearena.contracts.orchestration import MatchSpec
from tradearena.contracts.pool import Assignment
from tradearena.contracts.serverconfig import ServerDeployment, server_config
from tradearena.contracts.tracing import (
    ACTIONS_RATIO_ENV,
    ASSIGNMENT_FIELD,
    DEFAULT_ACTIONS_RATIO,
    MATCH_ANNOTATION,
    TICKET_FIELD,
    service_name,
)
from tradearena.orchestration.kubernetes import match_resource
from tradearena.telemetry import TraceContextFilter, json_formatter

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN_ID = 0x00F067AA0BA902B7
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def remote_span(sampled: bool = True) -> NonRecordingSpan:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    return NonRecordingSpan(SpanContext(TRACE_ID, SPAN_ID, is_remote=True, trace_flags=flags))


# ------------------------------------------------------------------ environment


@pytest.mark.parametrize(
    ("environ", "on"),
    [
        ({}, False),  # off by default (the OTel default `otlp` is not ours)
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console,none"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_tracing_is_on_only_when_an_exporter_is_named(environ: dict[str, str], on: bool) -> None:
    assert tracing.tracing_requested(environ) is on


@pytest.mark.parametrize(
    "environ",
    [
        {"OTEL_TRACES_EXPORTER": "zipkin"},
        {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
        {"OTEL_TRACES_EXPORTER": "otlp", ACTIONS_RATIO_ENV: "2"},
        {ACTIONS_RATIO_ENV: "often"},  # checked even while tracing is off
    ],
)
def test_an_unsupported_setting_is_refused_before_anything_is_set_up(
    environ: dict[str, str],
) -> None:
    with pytest.raises(tracing.TracingSettingsError):
        tracing.init_tracing("test", environ)
    assert not tracing.enabled()


def test_the_actions_ratio_defaults_and_parses() -> None:
    assert tracing.actions_ratio({}) == DEFAULT_ACTIONS_RATIO
    assert tracing.actions_ratio({ACTIONS_RATIO_ENV: "0.25"}) == 0.25


def test_no_action_is_sampled_while_tracing_is_off() -> None:
    assert not tracing.enabled()
    sample = tracing.ActionSampler(1.0)
    assert not any(sample() for _ in range(100))


def test_each_process_has_its_own_service_name() -> None:
    assert service_name("results-worker") == "tradearena-results-worker"


# ------------------------------------------------------------------ traceparent strings


def test_a_span_becomes_a_traceparent_and_back() -> None:
    assert tracing.traceparent_of(remote_span()) == TRACEPARENT
    sc = tracing.span_context_of(TRACEPARENT)
    assert sc is not None
    assert (sc.trace_id, sc.span_id, sc.is_remote) == (TRACE_ID, SPAN_ID, True)
    parent = trace.get_current_span(tracing.context_of(TRACEPARENT)).get_span_context()
    assert (parent.trace_id, parent.span_id) == (TRACE_ID, SPAN_ID)


def test_an_unsampled_span_passes_its_decision_on_and_an_invalid_one_nothing() -> None:
    unsampled = tracing.traceparent_of(remote_span(sampled=False))
    assert unsampled == TRACEPARENT[:-2] + "00"
    sc = tracing.span_context_of(unsampled)
    assert sc is not None
    assert not sc.trace_flags.sampled
    assert tracing.traceparent_of(trace.INVALID_SPAN) is None
    assert tracing.current_traceparent() is None  # no span here


@pytest.mark.parametrize(
    "value", [None, "", "garbage", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"]
)
def test_a_missing_or_malformed_traceparent_starts_a_new_trace(value: str | None) -> None:
    assert tracing.span_context_of(value) is None
    assert tracing.context_of(value) is tracing.ROOT
    assert tracing.link_to(value) is None


def test_links_go_only_to_spans_that_exist() -> None:
    links = tracing.links_to([(TRACEPARENT, {"player": "a"}), (None, {"player": "b"})])
    assert len(links) == 1
    assert links[0].context.trace_id == TRACE_ID
    assert dict(links[0].attributes or {}) == {"player": "a"}


def test_inject_adds_the_w3c_header_of_a_span() -> None:
    headers: dict[str, str] = {}
    tracing.inject(headers, remote_span())
    assert headers == {"traceparent": TRACEPARENT}
    tracing.inject(headers := {}, trace.INVALID_SPAN)
    assert headers == {}


# ------------------------------------------------------------------ log lines


def _format(record: logging.LogRecord) -> dict[str, object]:
    assert TraceContextFilter().filter(record)
    line: dict[str, object] = json.loads(json_formatter("test").format(record))
    return line


def test_every_json_log_line_names_the_current_span() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "inside", None, None)
    with trace.use_span(remote_span()):
        line = _format(record)
    assert line["trace_id"] == format(TRACE_ID, "032x")
    assert line["span_id"] == format(SPAN_ID, "016x")
    outside = _format(logging.LogRecord("x", logging.INFO, __file__, 1, "out", None, None))
    assert outside["trace_id"] is None
    assert outside["span_id"] is None


# ------------------------------------------------------------------ carriers


def test_the_queue_ticket_carries_the_journey() -> None:
    ticket = Ticket("t1", "p1", "duel", "blitz", 25.0, 1000, traceparent=TRACEPARENT)
    encoded = encode_ticket(ticket)
    assert json.loads(encoded)[TICKET_FIELD] == TRACEPARENT
    assert decode_ticket(encoded) == ticket
    untraced = Ticket("t1", "p1", "duel", "blitz", 25.0, 1000)
    assert TICKET_FIELD not in json.loads(encode_ticket(untraced))
    assert decode_ticket(encode_ticket(untraced)) == untraced


SPEC = MatchSpec("m-1", "duel", "blitz", 0, ("p1", "p2"), traceparent=TRACEPARENT)


def test_the_assignment_carries_the_match_trace() -> None:
    other = "00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01"
    assignment = Assignment.of(SPEC, 5, other)  # the allocator's own span wins
    assert Assignment.from_json(assignment.to_json()) == assignment
    assert assignment.traceparent == other
    assert Assignment.of(SPEC, 5).traceparent == TRACEPARENT
    plain = Assignment.of(MatchSpec("m-1", "duel", "blitz", 0, ("p1",)), 5)
    assert ASSIGNMENT_FIELD not in json.loads(plain.to_json())  # as before tracing


def test_the_match_resource_carries_the_match_trace_to_the_operator() -> None:
    body = match_resource(SPEC, "games")
    assert body["metadata"]["annotations"] == {MATCH_ANNOTATION: TRACEPARENT}
    assert match_spec(body).traceparent == TRACEPARENT
    plain = match_resource(MatchSpec("m-1", "duel", "blitz", 0, ("p1",)), "games")
    assert "annotations" not in plain["metadata"]
    assert match_spec(plain).traceparent is None


def test_a_dedicated_server_is_given_the_match_trace() -> None:
    deployment = ServerDeployment(host="127.0.0.1", redis="redis://x", verify_key="k.pem")
    entries = server_config(SPEC, 7000, deployment)
    values = {e.field: getattr(e, "value", None) for e in entries}
    assert values["traceparent"] == TRACEPARENT
    settings = MatchServerSettings(match_id="m-1", players=("p1", "p2"), traceparent=TRACEPARENT)
    assert dedicated_assignment(settings).traceparent == TRACEPARENT
