"""Structured JSON logs for every process: one line per event, ids as fields.

Pass ids with `extra=` (`log.info("fill", extra={"match_id": m, "player": p})`);
they become top-level JSON keys. Secrets never go into a log call.

Every line also carries `trace_id` and `span_id` (hex, W3C) of the span current when it
was logged, or null outside a span (tracing off: always null); see tradearena.tracing.
"""

from __future__ import annotations

import logging
import sys

from opentelemetry import trace
from pythonjsonlogger.json import JsonFormatter


class TraceContextFilter(logging.Filter):
    """Adds `trace_id` and `span_id` of the current span to each record (None if none)."""

    def filter(self, record: logging.LogRecord) -> bool:
        sc = trace.get_current_span().get_span_context()
        if sc.is_valid:
            record.trace_id = format(sc.trace_id, "032x")
            record.span_id = format(sc.span_id, "016x")
        else:
            record.trace_id = record.span_id = None
        return True


def json_formatter(component: str) -> JsonFormatter:
    """The JSON line format of every process: ts, level, logger, message, component,
    trace_id, span_id, then the call's `extra` fields."""
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s %(trace_id)s %(span_id)s",
        rename_fields={"asctime": "ts", "levelname": "level", "name": "logger"},
        static_fields={"component": component},
        timestamp=False,
    )


def configure_logging(component: str, level: str = "INFO", fmt: str = "json") -> None:
    handler = logging.StreamHandler(sys.stdout)
    if fmt == "json":
        handler.setFormatter(json_formatter(component))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s %(message)s"))
    handler.addFilter(TraceContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiohttp.access", "engineio.server", "socketio.server"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
