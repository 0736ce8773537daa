"""The `Match` CustomResourceDefinition, generated from the mode catalogue.

`crds/match.yaml` is the source of truth the chart copies; it is written by
`python -m match_operator.crd > crds/match.yaml` and a test keeps it equal to what
this module builds from `modes.toml`, so the apiserver refuses exactly the modes
and formats the catalogue does not know.
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


def build_crd(catalogue: Catalogue | None = None) -> dict[str, Any]:
    catalogue = catalogue or default_catalogue()
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": resource.CRD_NAME},
        "spec": {
            "group": resource.GROUP,
            "scope": "Namespaced",
            "names": {
                "plural": resource.PLURAL,
                "singular": resource.SINGULAR,
                "kind": resource.KIND,
                "listKind": resource.LIST_KIND,
                "shortNames": list(resource.SHORT_NAMES),
                "categories": list(resource.CATEGORIES),
            },
            "versions": [
                {
                    "name": resource.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
                        {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
                        {
                            "name": "Players",
                            "type": "string",
                            "description": "Players connected/expected",
                            "jsonPath": ".status.playersSummary",
                        },
                        {
                            "name": "Server",
                            "type": "string",
                            "description": "The server pod running the match",
                            "jsonPath": ".status.server",
                        },
                        {"name": "Address", "type": "string", "jsonPath": ".status.address"},
                        {"name": "Port", "type": "integer", "jsonPath": ".status.port"},
                        {"name": "Scheme", "type": "string", "jsonPath": ".status.scheme"},
                        {
                            "name": "Allocation",
                            "type": "string",
                            "jsonPath": ".status.allocation",
                            "priority": 1,
                        },
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "One match: the operator binds it to a pool"
                            " server, else runs a match-server pod for it.",
                            "required": ["spec"],
                            "x-kubernetes-validations": [
                                {
                                    "rule": "size(self.metadata.name) <= 63",
                                    "message": "a Match name is at most 63 characters "
                                    "(it names the pod and labels it)",
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
                    },
                }
            ],
        },
    }


def render(catalogue: Catalogue | None = None) -> str:
    header = (
        "# Generated from tradearena/modes.toml by `python -m match_operator.crd`;\n"
        "# do not edit by hand (a test checks it is in sync with the catalogue).\n"
    )
    body: str = yaml.safe_dump(build_crd(catalogue), sort_keys=False, width=100)
    return header + body


if __name__ == "__main__":
    sys.stdout.write(render())
