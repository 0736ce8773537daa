"""Identity of the `Match` custom resource: what the CRD declares, the operator watches
and writes, the lobby's Kubernetes runtime creates, and the chart's RBAC grants.

The CRD itself is generated from these (`python -m match_operator.crd`).
"""

from __future__ import annotations

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

# On a Match created by the lobby.
PART_OF_LABEL: Final = "app.kubernetes.io/part-of"
PART_OF: Final = "tradearena"

# On a match-server pod: who manages it and which Match it serves (same name).
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "tradearena-operator"
MATCH_LABEL: Final = f"{GROUP}/match"
RESTARTS_ANNOTATION: Final = f"{GROUP}/restarts-before"  # in-place restarts before this pod

# The operator's name on the Events it posts.
REPORTING_COMPONENT: Final = f"{GROUP}/operator"
