"""Where the W3C trace context (a `traceparent` header value) travels between processes.

Each carrier holds one `traceparent` string (`00-<trace id>-<span id>-<flags>`), or
nothing when tracing is off. Written and read through `tradearena.tracing`.
"""

from __future__ import annotations

from typing import Final

from tradearena.contracts.resource import GROUP

# HTTP requests (the W3C header) and Socket.IO connects (`auth: {token, traceparent}`).
TRACEPARENT_HEADER: Final = "traceparent"
SOCKET_AUTH_FIELD: Final = "traceparent"
# A queue ticket's JSON field: the player's journey, from the join request.
TICKET_FIELD: Final = "traceparent"
# The `match_ready` notification's field: the player's journey, carried by the client into
# its match-server connect.
NOTIFICATION_FIELD: Final = "traceparent"
# On a Match resource: the match's trace, from the lobby's formation.
MATCH_ANNOTATION: Final = f"{GROUP}/traceparent"
# A pool server's assignment (JSON field) and a dedicated server's setting: the match's trace.
ASSIGNMENT_FIELD: Final = "traceparent"
# A results stream entry's field beside `result`: the match's trace.
RESULT_FIELD: Final = "traceparent"


def service_name(process: str) -> str:
    """A process's default `service.name` (`tradearena-lobby`, ...); OTEL_SERVICE_NAME
    overrides it."""
    return f"tradearena-{process}"


# Service names (`service.name`) of the processes; OTEL_SERVICE_NAME overrides one.
SERVICE_LOBBY: Final = service_name("lobby")
SERVICE_MATCHSERVER: Final = service_name("matchserver")
SERVICE_FEED_RELAY: Final = service_name("feed-relay")
SERVICE_RESULTS_WORKER: Final = service_name("results-worker")
SERVICE_OPERATOR: Final = service_name("operator")
SERVICE_LOCAL_RUNTIME: Final = service_name("local-runtime")
SERVICE_BOTS: Final = service_name("bots")

# The share of player actions (0..1) given their own span inside a sampled trace.
ACTIONS_RATIO_ENV: Final = "TRADEARENA_TRACE_ACTIONS_RATIO"
DEFAULT_ACTIONS_RATIO: Final = 0.01
