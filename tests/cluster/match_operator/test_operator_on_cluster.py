"""The operator as a real process against the real control plane (kwok nodes).

kwok plays the kubelet: pods on its nodes become Running and Ready without any
container. A server's exit or crash is simulated by writing the pod status the
kubelet would write (status subresource), or by deleting the pod.
"""

from __future__ import annotations

import json

import pytest
import redis

from tradearena.contracts import keys, resource
from tradearena.testing.kube import KubeCluster

from .conftest import OperatorEnv, exited

pytestmark = pytest.mark.k8s

CREATED_TOTAL = "tradearena_operator_pods_created_total"


def test_a_match_gets_one_locked_down_pod_and_becomes_ready_at_the_node_address(
    op_env: OperatorEnv,
) -> None:
    op = op_env.start_operator()
    op_env.create_match("m-ready", durationMs=120_000, players=["alice", "bob"])
    match = op_env.wait_phase("m-ready", "Ready")
    status = match["status"]
    pod = op_env.pod("m-ready")
    assert pod is not None
    node = pod["spec"]["nodeName"]
    assert status["node"] == node and status["pod"] == "m-ready"
    assert status["address"] == op_env.cluster.node_external_ips[node]
    (container,) = pod["spec"]["containers"]
    assert container["ports"][0]["hostPort"] == container["ports"][0]["containerPort"]
    assert status["port"] == container["ports"][0]["hostPort"]
    assert 7000 <= status["port"] <= 8000
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TRADEARENA_MATCH_ID"] == "m-ready"
    assert env["TRADEARENA_PLAYERS"] == "alice,bob"
    assert env["TRADEARENA_DURATION_MS"] == "120000"
    assert env["TRADEARENA_PORT"] == str(status["port"])
    assert pod["spec"]["serviceAccountName"] == "tradearena-match-server"
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["spec"]["nodeSelector"] == {"tradearena.io/pool": "game"}
    assert pod["metadata"]["ownerReferences"][0]["uid"] == match["metadata"]["uid"]
    assert pod["metadata"]["labels"][resource.MATCH_LABEL] == "m-ready"
    assert status["readyAt"] and status["createdAt"]
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["Ready"] == "True" and conditions["Ended"] == "False"
    assert status["observedGeneration"] == match["metadata"]["generation"]
    assert {"ColdStart", "Creating", "Ready"} <= set(op_env.events("m-ready"))
    assert status["allocation"] == "cold" and status["server"] == "m-ready"

    table = op_env.cluster.kubectl("get", "mt", "-n", op_env.namespace).stdout
    header, row = table.splitlines()[:2]
    assert header.split()[:7] == ["NAME", "PHASE", "MODE", "PLAYERS", "SERVER", "ADDRESS", "PORT"]
    assert header.split()[-1] == "AGE"
    assert row.split()[:7] == [
        "m-ready",
        "Ready",
        "duel",
        "0/2",  # connected/expected
        "m-ready",  # its own pod
        status["address"],
        str(status["port"]),
    ]

    metrics = op.metrics()
    assert metrics['tradearena_operator_matches{phase="Ready"}'] == 1
    assert metrics["tradearena_operator_time_to_ready_seconds_count"] == 1
    assert metrics["tradearena_operator_pods_created_total"] == 1
    assert metrics['tradearena_operator_allocations_total{outcome="cold"}'] == 1


def test_exit_zero_finishes_and_the_ttl_deletes_the_match_and_its_pod(op_env: OperatorEnv) -> None:
    op_env.start_operator(TRADEARENA_OPERATOR_TTL_S="4")
    op_env.create_match("m-done")
    op_env.wait_phase("m-done", "Ready")
    op_env.patch_pod_status("m-done", exited(0))
    match = op_env.wait_phase("m-done", "Finished")
    assert match["status"]["finishedAt"]
    assert match["status"]["reason"] == "match server exited 0: results published"
    assert "Finished" in op_env.events("m-done")
    op_env.cluster.kubectl(
        "wait",
        "--for=delete",
        "match/m-done",
        "pod/m-done",
        "-n",
        op_env.namespace,
        "--timeout=60s",
    )


def test_the_server_going_live_then_a_cancel_flag_ends_it_gracefully(op_env: OperatorEnv) -> None:
    op_env.start_operator()
    op_env.create_match("m-cancel")
    op_env.wait_phase("m-cancel", "Ready")
    r = redis.Redis.from_url(op_env.redis_url)
    try:
        r.hset(keys.match_status("m-cancel"), "phase", "Live")  # what the server reports
        live = op_env.wait_phase("m-cancel", "Live")
        assert live["status"]["liveAt"]
        uid = op_env.pod("m-cancel")["metadata"]["uid"]  # type: ignore[index]
        op_env.cluster.kubectl(
            "patch",
            "match",
            "m-cancel",
            "-n",
            op_env.namespace,
            "--type=merge",
            "-p",
            '{"spec":{"cancel":true,"cancelReason":"ops: feed outage"}}',
        )
        done = op_env.wait_phase("m-cancel", "Cancelled")
        assert done["status"]["reason"] == "ops: feed outage"
        # The server finds the reason on SIGTERM and settles the match as cancelled.
        assert r.get(keys.match_cancel("m-cancel")) == b"ops: feed outage"
        pod = op_env.pod("m-cancel")
        assert pod is None or pod["metadata"]["uid"] != uid
        assert {"Cancelling", "Cancelled"} <= set(op_env.events("m-cancel"))
    finally:
        r.close()


def test_kubectl_delete_match_ends_it_through_the_finalizer(op_env: OperatorEnv) -> None:
    op_env.start_operator()
    op_env.create_match("m-del")
    match = op_env.wait_phase("m-del", "Ready")
    assert match["metadata"]["finalizers"] == ["tradearena.io/match-server"]
    op_env.cluster.kubectl("delete", "match", "m-del", "-n", op_env.namespace, "--timeout=60s")
    op_env.cluster.kubectl(
        "wait", "--for=delete", "pod/m-del", "-n", op_env.namespace, "--timeout=60s"
    )
    r = redis.Redis.from_url(op_env.redis_url)
    try:
        assert r.get(keys.match_cancel("m-del")) == b"match deleted"
    finally:
        r.close()


def test_a_pod_deleted_underneath_is_replaced_while_the_match_is_not_over(
    op_env: OperatorEnv,
) -> None:
    op_env.start_operator()
    op_env.create_match("m-gone")
    op_env.wait_phase("m-gone", "Ready")
    first = op_env.pod("m-gone")["metadata"]["uid"]  # type: ignore[index]
    op_env.cluster.kubectl("delete", "pod", "m-gone", "-n", op_env.namespace, "--wait=true")
    op_env.cluster.wait_until(
        "a new pod", lambda: (p := op_env.pod("m-gone")) and p["metadata"]["uid"] != first
    )
    match = op_env.wait_phase("m-gone", "Ready")
    assert match["status"]["retries"] == 1  # not live yet: a fresh attempt
    assert "Retrying" in op_env.events("m-gone")

    # Once live, a lost pod is the same match restarted in place, same host port.
    r = redis.Redis.from_url(op_env.redis_url)
    try:
        r.hset(keys.match_status("m-gone"), "phase", "Live")
        live = op_env.wait_phase("m-gone", "Live")
    finally:
        r.close()
    second = op_env.pod("m-gone")["metadata"]["uid"]  # type: ignore[index]
    op_env.cluster.kubectl("delete", "pod", "m-gone", "-n", op_env.namespace, "--wait=true")
    op_env.cluster.wait_until(
        "the restarted match",
        lambda: op_env.match("m-gone")["status"].get("restartCount") == 1,
    )
    pod = op_env.cluster.wait_until("the pod again", lambda: op_env.pod("m-gone"))
    assert pod["metadata"]["uid"] != second
    assert pod["spec"]["containers"][0]["ports"][0]["hostPort"] == live["status"]["port"]
    assert op_env.match("m-gone")["status"]["phase"] == "Live"


def test_failures_before_ready_are_retried_a_bounded_number_of_times(op_env: OperatorEnv) -> None:
    op_env.start_operator(TRADEARENA_OPERATOR_MAX_RETRIES="2")
    op_env.create_match("m-crash")
    seen: set[str] = set()
    for attempt in range(3):
        pod = op_env.cluster.wait_until(
            f"pod attempt {attempt}",
            lambda: (
                (p := op_env.pod("m-crash"))
                and p["metadata"]["uid"] not in seen
                and p["metadata"].get("deletionTimestamp") is None
                and p
            ),
        )
        seen.add(pod["metadata"]["uid"])
        op_env.patch_pod_status("m-crash", exited(1))
    match = op_env.wait_phase("m-crash", "Failed")
    assert match["status"]["retries"] == 2
    assert "exit 1" in match["status"]["reason"]
    assert op_env.events("m-crash").count("Retrying") == 2
    assert len(seen) == 3


def test_invalid_matches_are_refused_by_the_apiserver(
    kube_cluster: KubeCluster, op_env: OperatorEnv
) -> None:
    def refused(name: str, **spec: object) -> str:
        body = {
            "apiVersion": "tradearena.io/v1alpha1",
            "kind": "Match",
            "metadata": {"name": name, "namespace": op_env.namespace},
            "spec": {"mode": "duel", "format": "blitz", "players": ["a", "b"], **spec},
        }
        res = kube_cluster.kubectl(
            "create", "--validate=false", "-f", "-", input=json.dumps(body), check=False
        )
        assert res.returncode != 0, f"{name} was accepted"
        return res.stderr

    assert 'spec.mode: Unsupported value: "poker"' in refused("bad-mode", mode="poker")
    assert 'Duplicate value: "a"' in refused("dup", players=["a", "a"])
    assert "should have at least 1 items" in refused("empty", players=[])
    assert "too many players for the mode (at most: standard 10, duel 2" in refused(
        "crowd", players=["a", "b", "c"]
    )
    assert 'spec.format: Unsupported value: "forever"' in refused("fmt", format="forever")
    assert "durationMs in body should be greater than or equal to 1000" in refused(
        "short", durationMs=5
    )
    op_env.create_match("m-valid")
    immutable = kube_cluster.kubectl(
        "patch",
        "match",
        "m-valid",
        "-n",
        op_env.namespace,
        "--type=merge",
        "-p",
        '{"spec":{"mode":"standard"}}',
        check=False,
    )
    assert "mode is immutable" in immutable.stderr
    kube_cluster.kubectl(
        "patch",
        "match",
        "m-valid",
        "-n",
        op_env.namespace,
        "--type=merge",
        "-p",
        '{"spec":{"cancel":true}}',
    )
    resumed = kube_cluster.kubectl(
        "patch",
        "match",
        "m-valid",
        "-n",
        op_env.namespace,
        "--type=merge",
        "-p",
        '{"spec":{"cancel":false}}',
        check=False,
    )
    assert "a cancelled match cannot be resumed" in resumed.stderr


def test_rbac_is_least_privilege_and_match_pods_have_no_rights(
    kube_cluster: KubeCluster, op_env: OperatorEnv
) -> None:
    ns = op_env.namespace
    operator = f"--as=system:serviceaccount:{ns}:tradearena-operator"
    server = f"--as=system:serviceaccount:{ns}:tradearena-match-server"

    def can(who: str, *what: str) -> bool:
        res = kube_cluster.kubectl("auth", "can-i", *what, who, check=False)
        assert res.stdout.strip() in ("yes", "no"), res.stderr
        return res.stdout.strip() == "yes"

    allowed = [
        ("watch", "matches.tradearena.io", "-n", ns),
        ("patch", "matches.tradearena.io", "--subresource=status", "-n", ns),
        ("update", "matches.tradearena.io", "--subresource=finalizers", "-n", ns),
        ("create", "pods", "-n", ns),
        ("delete", "pods", "-n", ns),
        ("list", "nodes"),
        ("create", "events", "-n", ns),
        ("patch", "kopfpeerings.kopf.dev/tradearena-operator", "-n", ns),
        ("watch", "matchserverpools.tradearena.io", "-n", ns),
        ("patch", "matchserverpools.tradearena.io", "--subresource=status", "-n", ns),
        ("patch", "pods", "-n", ns),
    ]
    denied = [
        ("create", "matches.tradearena.io", "-n", ns),
        ("create", "matchserverpools.tradearena.io", "-n", ns),
        ("delete", "matchserverpools.tradearena.io", "-n", ns),
        ("update", "matchserverpools.tradearena.io", "-n", ns),
        ("patch", "matchserverpools.tradearena.io", "-n", ns),
        ("update", "pods", "-n", ns),
        ("create", "pods", "--subresource=exec", "-n", ns),
        ("get", "secrets", "-n", ns),
        ("list", "pods", "-n", "kube-system"),
        ("patch", "nodes"),
        ("delete", "nodes"),
        ("create", "deployments.apps", "-n", ns),
        ("patch", "kopfpeerings.kopf.dev/someone-else", "-n", ns),
        ("create", "clusterrolebindings"),
    ]
    for what in allowed:
        assert can(operator, *what), f"operator should be allowed to {what}"
    for what in denied:
        assert not can(operator, *what), f"operator must not be allowed to {what}"
    for what in [*allowed, ("get", "matches.tradearena.io", "-n", ns), ("get", "pods", "-n", ns)]:
        assert not can(server, *what), f"match server must not be allowed to {what}"


def test_the_pod_meets_the_restricted_pod_security_standard_but_for_its_host_port(
    kube_cluster: KubeCluster, op_env: OperatorEnv
) -> None:
    """The apiserver's own Pod Security admission judges the pod the operator builds:
    the only `restricted` violation is the host port players connect to (Agones-style)."""
    from match_operator.builders import build_pod_spec
    from match_operator.settings import OperatorSettings

    ns = op_env.namespace
    kube_cluster.kubectl("label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted")
    match = {
        "metadata": {"name": "m-psa", "namespace": ns, "uid": "0"},
        "spec": {"mode": "duel", "format": "blitz", "players": ["a", "b"]},
    }
    pod = build_pod_spec(match, OperatorSettings(), 7042)
    pod["metadata"].pop("ownerReferences")
    res = kube_cluster.kubectl(
        "create", "--dry-run=server", "-f", "-", input=json.dumps(pod), check=False
    )
    assert res.returncode != 0
    assert 'violates PodSecurity "restricted:' in res.stderr
    assert "hostPort" in res.stderr and "7042" in res.stderr
    for clean in ("allowPrivilegeEscalation", "runAsNonRoot", "seccompProfile", "capabilities"):
        assert clean not in res.stderr, res.stderr
    pod["spec"]["containers"][0]["ports"][0].pop("hostPort")
    kube_cluster.kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(pod))


def test_a_pod_that_never_gets_ready_times_out_and_is_retried_then_failed(
    op_env: OperatorEnv,
) -> None:
    # No node carries this pool label: the pod stays unschedulable, never Ready.
    op = op_env.start_operator(
        TRADEARENA_OPERATOR_NODE_SELECTOR='{"tradearena.io/pool": "nowhere"}',
        TRADEARENA_OPERATOR_STARTUP_TIMEOUT_S="3",
        TRADEARENA_OPERATOR_MAX_RETRIES="1",
    )
    op_env.create_match("m-slow")
    match = op_env.wait_phase("m-slow", "Failed")
    assert match["status"]["reason"] == "not Ready within 3s"
    assert match["status"]["retries"] == 1
    assert "readyAt" not in match["status"]
    assert op_env.events("m-slow").count("Retrying") == 1
    assert op.metrics()[CREATED_TOTAL] == 2  # the first pod and one retry
    op_env.cluster.kubectl(
        "wait", "--for=delete", "pod/m-slow", "-n", op_env.namespace, "--timeout=60s"
    )
    assert op.stop() == 0  # SIGTERM: a clean exit


def test_with_tls_the_match_advertises_https_at_the_templated_name(op_env: OperatorEnv) -> None:
    """The Secret's name and the address template reach the pod and the Match status, and
    the apiserver keeps status.scheme (the CRD knows it): the lobby's orchestrator reads
    an https:// url."""
    from tradearena.orchestration.kubernetes import match_status

    op_env.start_operator(
        TRADEARENA_OPERATOR_TLS_SECRET="match-tls",
        TRADEARENA_OPERATOR_ADDRESS_TEMPLATE="{node_ip_dashed}.play.test",
    )
    op_env.create_match("m-tls")
    match = op_env.wait_phase("m-tls", "Ready")
    status = match["status"]
    pod = op_env.pod("m-tls")
    assert pod is not None
    ip = op_env.cluster.node_external_ips[pod["spec"]["nodeName"]]
    assert status["address"] == f"{ip.replace('.', '-')}.play.test"
    assert status["scheme"] == "https"
    assert match_status(match).url == f"https://{status['address']}:{status['port']}"
    (container,) = pod["spec"]["containers"]
    assert container["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == "tls"]
    assert volume["secret"]["secretName"] == "match-tls"
    table = op_env.cluster.kubectl("get", "mt", "m-tls", "-n", op_env.namespace).stdout
    header, row = table.splitlines()[:2]
    assert row.split()[header.split().index("SCHEME")] == "https"
