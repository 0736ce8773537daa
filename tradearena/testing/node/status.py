"""Pure pod status: container states in, the ``status`` the API server stores out
(phase by the kubelet's rules, conditions, container statuses)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


def rfc3339(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ContainerState:
    """What the node knows about one container, in the API's vocabulary."""

    name: str
    image: str
    image_id: str = ""
    state: str = "waiting"  # waiting | running | terminated
    reason: str = "ContainerCreating"
    message: str = ""
    exit_code: int = 0
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    restart_count: int = 0
    ready: bool = False
    started: bool = False
    container_id: str = ""
    last_terminated: dict[str, Any] | None = field(default=None)

    def terminated_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"exitCode": self.exit_code, "reason": self.reason}
        if self.message:
            out["message"] = self.message
        if self.started_at:
            out["startedAt"] = rfc3339(self.started_at)
        if self.finished_at:
            out["finishedAt"] = rfc3339(self.finished_at)
        if self.container_id:
            out["containerID"] = self.container_id
        return out

    def to_json(self) -> dict[str, Any]:
        state: dict[str, Any]
        if self.state == "running":
            state = {"running": {"startedAt": rfc3339(self.started_at or dt.datetime.now(dt.UTC))}}
        elif self.state == "terminated":
            state = {"terminated": self.terminated_json()}
        else:
            waiting: dict[str, Any] = {"reason": self.reason}
            if self.message:
                waiting["message"] = self.message
            state = {"waiting": waiting}
        out: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imageID": self.image_id,
            "state": state,
            "lastState": {"terminated": self.last_terminated} if self.last_terminated else {},
            "ready": self.ready,
            "started": self.started,
            "restartCount": self.restart_count,
        }
        if self.container_id:
            out["containerID"] = self.container_id
        return out


def phase(
    restart_policy: str,
    init: Sequence[ContainerState],
    main: Sequence[ContainerState],
) -> str:
    """The kubelet's getPhase."""
    if (
        any(c.state == "terminated" and c.exit_code != 0 for c in init)
        and restart_policy == "Never"
    ):
        return "Failed"
    if not all(c.state == "terminated" and c.exit_code == 0 for c in init):
        return "Pending"
    running = waiting = stopped = succeeded = 0
    for c in main:
        if c.state == "running":
            running += 1
        elif c.state == "terminated":
            stopped += 1
            succeeded += c.exit_code == 0
        elif c.last_terminated is not None:
            stopped += 1
        else:
            waiting += 1
    if waiting:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if restart_policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _condition(
    kind: str,
    status: bool,
    previous: Mapping[str, Mapping[str, Any]],
    now: dt.datetime,
    reason: str = "",
) -> dict[str, Any]:
    value = "True" if status else "False"
    before = previous.get(kind)
    since = (
        before["lastTransitionTime"] if before and before.get("status") == value else rfc3339(now)
    )
    out: dict[str, Any] = {
        "type": kind,
        "status": value,
        "lastProbeTime": None,
        "lastTransitionTime": since,
    }
    if reason and not status:
        out["reason"] = reason
    return out


def pod_status(
    *,
    restart_policy: str,
    init: Sequence[ContainerState],
    main: Sequence[ContainerState],
    pod_ip: str,
    host_ip: str,
    start_time: dt.datetime,
    previous_conditions: Sequence[Mapping[str, Any]],
    now: dt.datetime,
    terminal: str | None = None,
) -> dict[str, Any]:
    current = terminal or phase(restart_policy, init, main)
    previous = {c["type"]: c for c in previous_conditions}
    initialized = all(c.state == "terminated" and c.exit_code == 0 for c in init)
    containers_ready = bool(main) and all(c.ready for c in main) and current == "Running"
    conditions = [
        _condition("PodReadyToStartContainers", bool(pod_ip), previous, now),
        _condition("Initialized", initialized, previous, now, "ContainersNotInitialized"),
        _condition("Ready", containers_ready, previous, now, "ContainersNotReady"),
        _condition("ContainersReady", containers_ready, previous, now, "ContainersNotReady"),
        _condition("PodScheduled", True, previous, now),
    ]
    status: dict[str, Any] = {
        "phase": current,
        "conditions": conditions,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "startTime": rfc3339(start_time),
        "containerStatuses": [c.to_json() for c in main],
    }
    if init:
        status["initContainerStatuses"] = [c.to_json() for c in init]
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    return status
