"""The `Match` and `MatchServerPool` CustomResourceDefinitions, generated from the mode
catalogue.

`crds/match.yaml` and `crds/matchserverpool.yaml` are the source of truth the chart
copies; they are written by `python -m match_operator.crd > crds/match.yaml` and
`python -m match_operator.crd pool > crds/matchserverpool.yaml`, and a test keeps them
equal to what this module builds from `modes.toml`, so the apiserver refuses exactly the
modes and formats the catalogue does not know.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from match_operator.builders import COLD, WARM
from tradearena.contracts import resource
from tradearena.contracts.orchestration import SCHEMES
from tradearena.contracts.phases import MatchPhase
from tradearena.modes import Catalogue, default_catalogue

MAX_DURATION_MS = 4 * 3600 * 1000  # the longest match the platform runs
PHASES = tuple(str(phase) for phase in MatchPhase)  # .status.phase, in the machine's order


def _max_players_rule(catalogue: Catalogue) -> dict[str, str]:
    limits = ", ".join(f"'{name}': {mode.players.max}" for name, mode in catalogue.modes.items())
    plain = ", ".join(f"{name} {mode.players.max}" for name, mode in catalogue.modes.items())
    return {
        "rule": f"size(self.players) <= {{{limits}}}[self.mode]",
        "message": f"too many players for the mode (at most: {plain})",
        "reason": "FieldValueInvalid",
        "fieldPath": ".players",
    }


def _spec_schema(catalogue: Catalogue) -> dict[str, Any]:
    most_players = max(mode.players.max for mode in catalogue.modes.values())
    immutable = "is immutable: create a new Match instead"
    return {
        "type": "object",
        "required": ["mode", "players", "format"],
        "properties": {
            "mode": {
                "type": "string",
                "description": "Mode from the catalogue (modes.toml).",
                "maxLength": 32,
                "enum": list(catalogue.modes),
            },
            "format": {
                "type": "string",
                "description": "Format preset; `auto` is resolved before the Match is created.",
                "maxLength": 32,
                "enum": list(catalogue.formats),
            },
            "durationMs": {
                "type": "integer",
                "description": "Overrides the format's length (milliseconds).",
                "minimum": 1000,
                "maximum": MAX_DURATION_MS,
            },
            "symbol": {
                "type": "string",
                "description": "Binance spot symbol traded in the match.",
                "default": "BTCUSDT",
                "pattern": "^[A-Z0-9]{2,20}$",
            },
            "players": {
                "type": "array",
                "description": "Player ids; each appears once.",
                "minItems": 1,
                "maxItems": most_players,
                "x-kubernetes-list-type": "set",
                "items": {"type": "string", "minLength": 1, "maxLength": 64},
            },
            "cancel": {
                "type": "boolean",
                "description": "Set to true to end the match gracefully (settled as cancelled).",
                "default": False,
            },
            "cancelReason": {"type": "string", "maxLength": 256},
        },
        "x-kubernetes-validations": [
            _max_players_rule(catalogue),
            {"rule": "self.mode == oldSelf.mode", "message": f"mode {immutable}"},
            {"rule": "self.format == oldSelf.format", "message": f"format {immutable}"},
            {"rule": "self.players == oldSelf.players", "message": f"players {immutable}"},
            {
                "rule": "self.symbol == oldSelf.symbol",
                "message": f"symbol {immutable}",
            },
            {
                "rule": "has(self.durationMs) == has(oldSelf.durationMs)"
                " && (!has(self.durationMs) || self.durationMs == oldSelf.durationMs)",
                "message": f"durationMs {immutable}",
            },
            {
                "rule": "!oldSelf.cancel || self.cancel",
                "message": "a cancelled match cannot be resumed",
            },
        ],
    }


def _status_schema() -> dict[str, Any]:
    time = {"type": "string", "format": "date-time"}
    condition = {
        "type": "object",
        "required": ["type", "status"],
        "properties": {
            "type": {"type": "string"},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "reason": {"type": "string"},
            "message": {"type": "string"},
            "lastTransitionTime": time,
            "observedGeneration": {"type": "integer"},
        },
    }
    return {
        "type": "object",
        "properties": {
            "phase": {"type": "string", "enum": list(PHASES)},
            "address": {
                "type": "string",
                "description": "Where players connect: the operator's address template applied"
                " to the node (default its ExternalIP, else InternalIP).",
            },
            "scheme": {
                "type": "string",
                "enum": list(SCHEMES),
                "description": "https when the server holds a certificate for the address"
                " (players use wss://), else http.",
            },
            "port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "pod": {"type": "string", "description": "The match's own pod (a cold start)."},
            "server": {
                "type": "string",
                "description": "The pod of the server running the match: a pool server's"
                " (warm) or its own (cold).",
            },
            "allocation": {
                "type": "string",
                "enum": [WARM, COLD],
                "description": "warm: bound to a running pool server; cold: a pod created"
                " for it (no pool serves the match, or none had room).",
            },
            "pool": {"type": "string", "description": "The pool of its server (warm)."},
            "node": {"type": "string"},
            "playersConnected": {
                "type": "integer",
                "minimum": 0,
                "description": "Players connected now, as the server reports (coalesced).",
            },
            "playersExpected": {"type": "integer", "minimum": 0},
            "playersSummary": {
                "type": "string",
                "description": "connected/expected, for `kubectl get matches`.",
            },
            "createdAt": time,
            "readyAt": time,
            "liveAt": time,
            "finishedAt": time,
            "restartCount": {"type": "integer", "minimum": 0},
            "retries": {"type": "integer", "minimum": 0},
            "reason": {"type": "string"},
            "observedGeneration": {"type": "integer"},
            "conditions": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
                "items": condition,
            },
        },
    }


def _column(
    name: str,
    path: str,
    kind: str = "string",
    *,
    description: str | None = None,
    priority: int | None = None,
) -> dict[str, Any]:
    """A printer column (priority 1: shown with `-o wide` only)."""
    column: dict[str, Any] = {"name": name, "type": kind}
    if description is not None:
        column["description"] = description
    column["jsonPath"] = path
    if priority is not None:
        column["priority"] = priority
    return column


def _definition(
    crd_name: str,
    names: dict[str, Any],
    columns: list[dict[str, Any]],
    schema: dict[str, Any],
) -> dict[str, Any]:
    """The envelope both CRDs share: one served, stored version with a status subresource."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": crd_name},
        "spec": {
            "group": resource.GROUP,
            "scope": "Namespaced",
            "names": {**names, "categories": list(resource.CATEGORIES)},
            "versions": [
                {
                    "name": resource.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def build_crd(catalogue: Catalogue | None = None) -> dict[str, Any]:
    catalogue = catalogue or default_catalogue()
    names = {
        "plural": resource.PLURAL,
        "singular": resource.SINGULAR,
        "kind": resource.KIND,
        "listKind": resource.LIST_KIND,
        "shortNames": list(resource.SHORT_NAMES),
    }
    columns = [
        _column("Phase", ".status.phase"),
        _column("Mode", ".spec.mode"),
        _column("Players", ".status.playersSummary", description="Players connected/expected"),
        _column("Server", ".status.server", description="The server pod running the match"),
        _column("Address", ".status.address"),
        _column("Port", ".status.port", "integer"),
        _column("Scheme", ".status.scheme"),
        _column("Allocation", ".status.allocation", priority=1),
        _column("Age", ".metadata.creationTimestamp", "date"),
    ]
    schema = {
        "type": "object",
        "description": "One match: the operator binds it to a pool"
        " server, else runs a match-server pod for it.",
        "required": ["spec"],
        "x-kubernetes-validations": [
            {
                "rule": "size(self.metadata.name) <= 63",
                "message": "a Match name is at most 63 characters (it names the pod and labels it)",
            }
        ],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": _spec_schema(catalogue),
            "status": _status_schema(),
        },
    }
    return _definition(resource.CRD_NAME, names, columns, schema)


def _pool_schema(catalogue: Catalogue) -> dict[str, Any]:
    count = {"type": "integer", "minimum": 0}
    spec = {
        "type": "object",
        "default": {},  # so every field's default applies to a pool given no spec
        "properties": {
            "capacity": {
                "type": "integer",
                "description": "Matches one server hosts at once.",
                "default": 1,
                "minimum": 1,
                "maximum": 64,
            },
            "buffer": {
                "x-kubernetes-int-or-string": True,
                "description": "Idle servers kept ready beyond the allocated ones: a count, or"
                " a percentage of all servers (`25%`), as an Agones FleetAutoscaler's bufferSize.",
                "default": 1,
                "anyOf": [{"type": "integer"}, {"type": "string"}],
            },
            "minReplicas": {**count, "default": 0, "description": "Fewest servers."},
            "maxReplicas": {**count, "default": 10, "description": "Most servers."},
            "modes": {
                "type": "array",
                "description": "Modes it serves; empty: every mode.",
                "x-kubernetes-list-type": "set",
                "items": {"type": "string", "enum": list(catalogue.modes)},
            },
            "formats": {
                "type": "array",
                "description": "Formats it serves; empty: every format.",
                "x-kubernetes-list-type": "set",
                "items": {"type": "string", "enum": list(catalogue.formats)},
            },
            "image": {
                "type": "string",
                "description": "The servers' image; default: the operator's match-server image.",
                "minLength": 1,
            },
        },
        "x-kubernetes-validations": [
            {
                "rule": "!has(self.minReplicas) || !has(self.maxReplicas)"
                " || self.minReplicas <= self.maxReplicas",
                "message": "minReplicas must not exceed maxReplicas",
            },
            {
                "rule": "!has(self.buffer) || (type(self.buffer) == int ? int(self.buffer) >= 0"
                " : string(self.buffer).matches('^([1-9]|[1-9][0-9])%$'))",
                "message": "buffer: a count (0 or more) or a percentage from 1% to 99%",
                "fieldPath": ".buffer",
            },
        ],
    }
    status = {
        "type": "object",
        "properties": {
            "replicas": {**count, "description": "Servers wanted (allocated + buffer)."},
            "currentReplicas": {**count, "description": "Server pods that are not ending."},
            "readyReplicas": {**count, "description": "Servers whose pod is Ready."},
            "allocatedReplicas": {**count, "description": "Servers hosting a match."},
            "matches": {**count, "description": "Matches hosted over all servers."},
            "capacity": {**count, "description": "Matches all servers can host."},
            "inUse": {"type": "string", "description": "`matches/capacity`."},
            "serves": {"type": "string", "description": "Its modes (and formats), or `all`."},
            "templateHash": {"type": "string"},
            "observedGeneration": {"type": "integer"},
        },
    }
    return {
        "type": "object",
        "description": "Warm match servers kept ready for allocation (as an Agones Fleet"
        " with a buffer FleetAutoscaler).",
        "x-kubernetes-validations": [
            {
                "rule": f"size(self.metadata.name) <= {resource.POOL_NAME_MAX}",
                "message": f"a MatchServerPool name is at most {resource.POOL_NAME_MAX}"
                " characters (its servers are named <pool>-<5 characters>)",
            }
        ],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }


def build_pool_crd(catalogue: Catalogue | None = None) -> dict[str, Any]:
    """The `MatchServerPool` CRD: its modes and formats are the catalogue's, as a Match's."""
    catalogue = catalogue or default_catalogue()
    names = {
        "plural": resource.POOL_PLURAL,
        "singular": resource.POOL_SINGULAR,
        "kind": resource.POOL_KIND,
        "listKind": resource.POOL_LIST_KIND,
        "shortNames": list(resource.POOL_SHORT_NAMES),
    }
    columns = [
        _column("Desired", ".status.replicas", "integer"),
        _column("Current", ".status.currentReplicas", "integer"),
        _column("Ready", ".status.readyReplicas", "integer"),
        _column("Allocated", ".status.allocatedReplicas", "integer"),
        _column("In Use", ".status.inUse"),
        _column("Modes", ".status.serves"),
        _column("Capacity", ".spec.capacity", "integer", priority=1),
        _column("Buffer", ".spec.buffer", priority=1),
        _column("Min", ".spec.minReplicas", "integer", priority=1),
        _column("Max", ".spec.maxReplicas", "integer", priority=1),
        _column("Age", ".metadata.creationTimestamp", "date"),
    ]
    return _definition(resource.POOL_CRD_NAME, names, columns, _pool_schema(catalogue))


def render(catalogue: Catalogue | None = None) -> str:
    header = (
        "# Generated from tradearena/modes.toml by `python -m match_operator.crd`;\n"
        "# do not edit by hand (a test checks it is in sync with the catalogue).\n"
    )
    body: str = yaml.safe_dump(build_crd(catalogue), sort_keys=False, width=100)
    return header + body


def render_pool(catalogue: Catalogue | None = None) -> str:
    header = (
        "# Generated from tradearena/modes.toml by `python -m match_operator.crd pool`;\n"
        "# do not edit by hand (a test checks it is in sync with the catalogue).\n"
    )
    body: str = yaml.safe_dump(build_pool_crd(catalogue), sort_keys=False, width=100)
    return header + body


if __name__ == "__main__":
    sys.stdout.write(render_pool() if sys.argv[1:] == ["pool"] else render())
