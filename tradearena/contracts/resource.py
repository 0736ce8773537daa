"""Identity of the `Match` custom resource: what the CRD declares, the operator watches
and writes, the lobby's Kubernetes runtime creates, and the chart's RBAC grants.

The CRD itself is generated from these (`python -m match_operator.crd`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

GROUP: Final = "tradearena.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "Match"
LIST_KIND: Final = "MatchList"
PLURAL: Final = "matches"
SINGULAR: Final = "match"
SHORT_NAMES: Final = ("mt",)
CATEGORIES: Final = ("tradearena", "all")
CRD_NAME: Final = f"{PLURAL}.{GROUP}"

# On a Match: the operator's finalizer (the pod is stopped before the Match goes).
FINALIZER: Final = f"{GROUP}/match-server"

# A Match's status conditions (`kubectl wait --for=condition=Ready match/<id>`).
CONDITION_READY: Final = "Ready"  # players can connect (phase Ready or Live)
CONDITION_LIVE: Final = "Live"
CONDITION_ENDED: Final = "Ended"  # a terminal phase

# On a Match created by the lobby.
PART_OF_LABEL: Final = "app.kubernetes.io/part-of"
PART_OF: Final = "tradearena"

# On a match-server pod: who manages it and which Match it serves (same name).
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "tradearena-operator"
MATCH_LABEL: Final = f"{GROUP}/match"
RESTARTS_ANNOTATION: Final = f"{GROUP}/restarts-before"  # in-place restarts before this pod
# What the chart's NetworkPolicy and monitoring select match-server pods by.
SERVER_POD_LABELS: Final[Mapping[str, str]] = MappingProxyType(
    {
        "app.kubernetes.io/name": "tradearena-matchserver",
        "app.kubernetes.io/component": "match-server",
    }
)

# The node label of the pools (terraform sets it); match servers run on `game` nodes.
POOL_LABEL: Final = f"{GROUP}/pool"

# The operator's name on the Events it posts.
REPORTING_COMPONENT: Final = f"{GROUP}/operator"

# ---------------------------------------------------------------------------- pools
# `MatchServerPool`: a set of warm pool servers (Agones Fleet + FleetAutoscaler buffer
# policy), each a pod running `tradearena matchserver` with a server id and a capacity.
POOL_KIND: Final = "MatchServerPool"
POOL_LIST_KIND: Final = "MatchServerPoolList"
POOL_PLURAL: Final = "matchserverpools"
POOL_SINGULAR: Final = "matchserverpool"
POOL_SHORT_NAMES: Final = ("msp",)
POOL_CRD_NAME: Final = f"{POOL_PLURAL}.{GROUP}"
POOL_NAME_MAX: Final = 57  # a pod is `<pool>-<5 random>`, at most 63 (a DNS label)

# On a pool server pod. The pool's name: not `POOL_LABEL`, which names node pools.
SERVER_POOL_LABEL: Final = f"{GROUP}/server-pool"
TEMPLATE_HASH_LABEL: Final = f"{GROUP}/template-hash"  # the pool template it was built from
ALLOCATED_LABEL: Final = f"{GROUP}/allocated"  # "true" while it hosts a match
# "false" while a match runs on the pod (pool servers hosting one, and every dedicated
# match pod): the chart's PodDisruptionBudget (maxUnavailable 0) selects these.
SAFE_TO_EVICT_LABEL: Final = f"{GROUP}/safe-to-evict"
CAPACITY_ANNOTATION: Final = f"{GROUP}/capacity"  # matches it may host at once
MATCHES_ANNOTATION: Final = f"{GROUP}/matches"  # "<hosted>/<capacity>"
PLAYERS_ANNOTATION: Final = f"{GROUP}/players"  # players connected over its matches
# The cluster autoscaler's own annotation, kept in step with SAFE_TO_EVICT_LABEL.
AUTOSCALER_SAFE_TO_EVICT: Final = "cluster-autoscaler.kubernetes.io/safe-to-evict"
