"""OpenTelemetry tracing for every process, configured by the standard OTEL_* environment.

Off by default: nothing is set up, the OpenTelemetry API's no-op tracer answers every
call and the SDK is not even imported. On with `OTEL_TRACES_EXPORTER=otlp` (OTLP over
HTTP/protobuf to `OTEL_EXPORTER_OTLP_ENDPOINT`, default http://localhost:4318) or
`console`; `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG` choose the sampler
(default `parentbased_always_on`), `OTEL_BSP_*` the batching, `OTEL_SERVICE_NAME` the
service name (each process has its own default, `tradearena.contracts.tracing`), and
`TRADEARENA_TRACE_ACTIONS_RATIO` the share of player actions given a span.

The trace context crosses processes as a W3C `traceparent` string (see
`tradearena.contracts.tracing` for where it travels); these helpers turn spans into
such strings and back, so the components never touch a propagator:

    init_tracing(SERVICE_LOBBY)                       # once, at process start
    with tracer(__name__).start_as_current_span("queue.join"):
        ticket.traceparent = current_traceparent()
    ... in another process:
    with tracer(__name__).start_as_current_span("x", context=context_of(tp)): ...
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Link, NonRecordingSpan, Span, SpanContext, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from tradearena.contracts.tracing import (
    ACTIONS_RATIO_ENV,
    DEFAULT_ACTIONS_RATIO,
    TRACEPARENT_HEADER,
)

log = logging.getLogger(__name__)

_PROPAGATOR = TraceContextTextMapPropagator()
# A context with no span: a span started in it begins a new trace.
ROOT = Context()

_state: dict[str, Any] = {"enabled": False, "providers": {}, "exporters": None}


class TracingSettingsError(ValueError):
    """An OTEL_* value this project does not support (one line, at start-up)."""


def _exporter_names(environ: Mapping[str, str]) -> list[str]:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    raw = environ.get("OTEL_TRACES_EXPORTER", "none")
    names = [n.strip().lower() for n in raw.split(",") if n.strip()]
    return [n for n in names if n != "none"]


def tracing_requested(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the environment turns tracing on (a pure reading, no set-up)."""
    return bool(_exporter_names(os.environ if environ is None else environ))


def actions_ratio(environ: Mapping[str, str] | None = None) -> float:
    """The share of player actions given their own span (0..1)."""
    env = os.environ if environ is None else environ
    raw = env.get(ACTIONS_RATIO_ENV, "").strip()
    if not raw:
        return DEFAULT_ACTIONS_RATIO
    try:
        value = float(raw)
    except ValueError:
        raise TracingSettingsError(f"{ACTIONS_RATIO_ENV}: {raw!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise TracingSettingsError(f"{ACTIONS_RATIO_ENV}: {raw!r} is not within 0..1")
    return value


def _exporters(names: list[str], environ: Mapping[str, str]) -> list[Any]:
    out: list[Any] = []
    for name in names:
        if name == "otlp":
            protocol = environ.get(
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            )
            if protocol != "http/protobuf":
                raise TracingSettingsError(
                    f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol!r} is not supported "
                    "(use http/protobuf, port 4318)"
                )
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            out.append(OTLPSpanExporter())  # endpoint, headers, timeout: OTEL_EXPORTER_OTLP_*
        elif name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            out.append(ConsoleSpanExporter())
        else:
            raise TracingSettingsError(
                f"OTEL_TRACES_EXPORTER: {name!r} is not supported (otlp, console or none)"
            )
    return out


def _provider(service: str, exporters: list[Any]) -> Any:
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    # The sampler comes from OTEL_TRACES_SAMPLER(_ARG); resource attributes from
    # OTEL_RESOURCE_ATTRIBUTES, the service name given here winning over theirs.
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def init_tracing(service: str, environ: Mapping[str, str] | None = None) -> bool:
    """Set up tracing for this process when the environment asks for it; True if on.

    `service` is the process's default `service.name`; OTEL_SERVICE_NAME overrides it.
    Idempotent: a second call keeps the first set-up.
    """
    if _state["enabled"]:
        return True
    env = os.environ if environ is None else environ
    names = _exporter_names(env)
    actions_ratio(env)  # a bad ratio fails at start, not at the first action
    if not names:
        return False
    exporters = _exporters(names, env)
    name = env.get("OTEL_SERVICE_NAME", "").strip() or service
    provider = _provider(name, exporters)
    trace.set_tracer_provider(provider)
    _state.update(enabled=True, exporters=names, env=dict(env))
    _state["providers"][name] = provider
    log.info("tracing on", extra={"service": name, "exporters": ",".join(names)})
    return True


def enabled() -> bool:
    return bool(_state["enabled"])


def tracer(name: str, service: str | None = None) -> Tracer:
    """A tracer of this process, or of a second service it hosts (`up` runs the lobby and
    the local runtime in one process: each names its own spans' service)."""
    if service is None or not _state["enabled"]:
        return trace.get_tracer(name)
    providers: dict[str, Any] = _state["providers"]
    provider = providers.get(service)
    if provider is None:
        provider = _provider(service, _exporters(_state["exporters"], _state["env"]))
        providers[service] = provider
    result: Tracer = provider.get_tracer(name)
    return result


def shutdown() -> None:
    """Export what is buffered and stop (also done at interpreter exit)."""
    for provider in _state["providers"].values():
        provider.shutdown()


# ---------------------------------------------------------------- traceparent strings


def traceparent_of(span: Span | None = None) -> str | None:
    """The W3C `traceparent` of a span (default: the current one); None when there is
    none (tracing off). An unsampled span has one too (flags 00), so that the processes
    after it keep the sampler's decision (the `parentbased_*` samplers) instead of
    starting a trace of their own."""
    span = trace.get_current_span() if span is None else span
    sc = span.get_span_context()
    if not sc.is_valid:
        return None
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, trace.set_span_in_context(span))
    return carrier.get(TRACEPARENT_HEADER)


def current_traceparent() -> str | None:
    return traceparent_of(None)


def span_context_of(traceparent: str | None) -> SpanContext | None:
    """The remote span context a `traceparent` names, or None (absent or malformed)."""
    if not traceparent or not isinstance(traceparent, str):
        return None
    ctx = _PROPAGATOR.extract({TRACEPARENT_HEADER: traceparent})
    sc = trace.get_current_span(ctx).get_span_context()
    return sc if sc.is_valid else None


def context_of(traceparent: str | None) -> Context:
    """A context whose parent is the span a `traceparent` names; a new trace's root
    context (`ROOT`) when there is none."""
    sc = span_context_of(traceparent)
    if sc is None:
        return ROOT
    return trace.set_span_in_context(NonRecordingSpan(sc), Context())


def link_to(traceparent: str | None, **attributes: str) -> Link | None:
    sc = span_context_of(traceparent)
    return None if sc is None else Link(sc, attributes or None)


def links_to(items: Iterable[tuple[str | None, Mapping[str, str]]]) -> list[Link]:
    """Span links to each (traceparent, attributes) that names a span."""
    out = []
    for traceparent, attributes in items:
        link = link_to(traceparent, **attributes)
        if link is not None:
            out.append(link)
    return out


def inject(headers: MutableMapping[str, str], span: Span | None = None) -> None:
    """Add the `traceparent` header of a span (default: the current one), if any."""
    value = traceparent_of(span)
    if value is not None:
        headers[TRACEPARENT_HEADER] = value


class ActionSampler:
    """Which player actions get their own span: a share set once per process."""

    def __init__(self, ratio: float | None = None) -> None:
        self.ratio = actions_ratio() if ratio is None else ratio
        self._random = random.Random()  # noqa: S311 - sampling, not security

    def __call__(self) -> bool:
        if not _state["enabled"] or self.ratio <= 0.0:
            return False
        return self.ratio >= 1.0 or self._random.random() < self.ratio
