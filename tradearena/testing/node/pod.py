"""One pod's life on the node: sandbox (network namespace, /etc files, volumes),
init containers in order, containers with restart policy and probes, status
reports, and graceful deletion (preStop, SIGTERM, grace period, SIGKILL, teardown,
then the object's removal with a UID precondition)."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubernetes_asyncio.client.exceptions import ApiException

from tradearena.testing.node import container, network, podspec, probes
from tradearena.testing.node.proxy import Forwarder
from tradearena.testing.node.status import ContainerState, pod_status

if TYPE_CHECKING:
    from tradearena.testing.node.agent import Agent

log = logging.getLogger(__name__)

Json = dict[str, Any]
MAX_BACKOFF = 10.0
CONFIG_RETRY = 2.0


@dataclass(frozen=True)
class Image:
    name: str
    directory: Path
    config: podspec.ImageConfig
    image_id: str

    @property
    def rootfs(self) -> Path:
        return self.directory / "rootfs"

    @classmethod
    def load(cls, name: str, directory: Path) -> Image:
        raw = (directory / "config.json").read_bytes()
        return cls(
            name,
            directory,
            podspec.ImageConfig.from_json(json.loads(raw)),
            "sha256:" + hashlib.sha256(raw).hexdigest(),
        )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class PodWorker:
    def __init__(self, agent: Agent, pod: Json) -> None:
        self.agent = agent
        self.pod = pod
        meta = pod["metadata"]
        self.uid: str = meta["uid"]
        self.namespace: str = meta["namespace"]
        self.name: str = meta["name"]
        self.key = f"{self.namespace}/{self.name}"
        spec = pod["spec"]
        self.restart_policy: str = spec.get("restartPolicy", "Always")
        self.init_specs: list[Json] = list(spec.get("initContainers") or [])
        self.main_specs: list[Json] = list(spec.get("containers") or [])
        initial = "PodInitializing" if self.init_specs else "ContainerCreating"
        self.init_states = [
            ContainerState(c["name"], c.get("image", ""), reason="PodInitializing")
            for c in self.init_specs
        ]
        self.main_states = [
            ContainerState(c["name"], c.get("image", ""), reason=initial) for c in self.main_specs
        ]
        self.dir = agent.config.state_dir / "pods" / self.uid
        self.start_time = _now()
        self.net: network.PodNetwork | None = None
        self.pod_ip = ""
        self.plans: dict[str, podspec.ContainerPlan] = {}
        self.users: dict[str, tuple[int, int, list[int]]] = {}
        self.images: dict[str, Image] = {}
        self.volume_kinds: dict[str, str] = {}
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.forwarders: list[Forwarder] = []
        self.terminal: str | None = None
        self.deleting = asyncio.Event()
        self.gone = False  # the object is gone from the API server
        self._dirty = asyncio.Event()
        self._conditions: list[Json] = []
        self._attempt = 0
        self.task: asyncio.Task[None] | None = None
        self._side_tasks: list[asyncio.Task[None]] = []  # token refreshes

    # --- events from the agent ----------------------------------------------------

    def update(self, pod: Json) -> None:
        self.pod = pod
        if pod["metadata"].get("deletionTimestamp"):
            self.deleting.set()

    def vanished(self) -> None:
        self.gone = True
        self.deleting.set()

    def mark(self) -> None:
        self._dirty.set()

    # --- the lifecycle --------------------------------------------------------------

    async def run(self) -> None:
        log.info("pod %s uid=%s: starting", self.key, self.uid)
        reporter = asyncio.create_task(self._report_loop())
        lifecycle = asyncio.create_task(self._lifecycle())
        if self.pod["metadata"].get("deletionTimestamp"):
            self.deleting.set()
        try:
            await self.deleting.wait()
        finally:
            for task in [lifecycle, *self._side_tasks]:
                task.cancel()
            await asyncio.gather(lifecycle, *self._side_tasks, return_exceptions=True)
            try:
                await self._terminate()
            finally:
                reporter.cancel()
                await asyncio.gather(reporter, return_exceptions=True)
                if not self.gone and not self.agent.stopping:
                    await self._delete_object()
        log.info("pod %s: removed", self.key)

    async def _lifecycle(self) -> None:
        try:
            await self._setup_sandbox()
            if not await self._resolve_images():
                return
            await self._resolve_config()
            await self._open_host_ports()
            for spec, state in zip(self.init_specs, self.init_states, strict=True):
                if not await self._run_init(spec, state):
                    return
            for state in self.main_states:
                state.reason = "ContainerCreating"
            self.mark()
            await asyncio.gather(
                *(
                    self._run_main(spec, state)
                    for spec, state in zip(self.main_specs, self.main_states, strict=True)
                )
            )
            if self.restart_policy != "Always":
                self.terminal = (
                    "Failed" if any(s.exit_code for s in self.main_states) else "Succeeded"
                )
                log.info("pod %s: %s", self.key, self.terminal)
                self.mark()
                await self._teardown_sandbox()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("pod %s: failed: %s", self.key, exc)
            for state in [*self.init_states, *self.main_states]:
                if state.state == "waiting":
                    state.reason, state.message = "CreateContainerError", str(exc)
            self.mark()

    async def _setup_sandbox(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.pod_ip = self.agent.addresses.allocate()
        self.net = await asyncio.to_thread(
            network.add_pod,
            self.agent.prefix,
            self.uid,
            self.pod_ip,
            self.agent.addresses,
            self.agent.config.bridge,
        )
        etc = self.dir / "etc"
        etc.mkdir(exist_ok=True)
        self.refresh_hosts()
        search = f"{self.namespace}.svc.cluster.local svc.cluster.local cluster.local"
        (etc / "resolv.conf").write_text(
            f"search {search}\nnameserver {self.agent.host_ip}\noptions ndots:5\n"
        )
        (etc / "hostname").write_text(self._hostname() + "\n")
        log.info("pod %s: sandbox ready ip=%s netns=%s", self.key, self.pod_ip, self.net.netns)
        self.mark()

    def _hostname(self) -> str:
        return str(self.pod["spec"].get("hostname") or self.name)

    def refresh_hosts(self) -> None:
        """(Re)write /etc/hosts in place (the bind mount keeps following the inode)."""
        if not self.pod_ip or self.net is None:  # no sandbox (yet, or any more)
            return
        path = self.dir / "etc" / "hosts"
        text = podspec.hosts_file(
            self.pod_ip, self._hostname(), self.agent.service_ips(), self.namespace
        )
        try:
            if not path.exists() or path.read_text() != text:
                with path.open("w") as f:
                    f.write(text)
        except OSError as exc:  # the pod is being torn down
            log.debug("pod %s: hosts not refreshed: %s", self.key, exc)

    async def _resolve_images(self) -> bool:
        missing = []
        for spec in [*self.init_specs, *self.main_specs]:
            image = self.agent.images.get(spec.get("image", ""))
            if image is None:
                missing.append(spec)
            else:
                self.images[spec["name"]] = image
        if not missing:
            return True
        names = {s["name"] for s in missing}
        for state in [*self.init_states, *self.main_states]:
            if state.name in names:
                state.reason = "ErrImagePull"
                state.message = f'image "{state.image}" not known to this node'
        log.warning(
            "pod %s: unknown images %s", self.key, sorted({str(s.get("image")) for s in missing})
        )
        self.mark()
        await asyncio.sleep(2)
        for state in [*self.init_states, *self.main_states]:
            if state.name in names:
                state.reason = "ImagePullBackOff"
                state.message = f'Back-off pulling image "{state.image}"'
        self.mark()
        return False

    async def _fetch(self, kind: str, names: set[str]) -> dict[str, dict[str, bytes]]:
        out: dict[str, dict[str, bytes]] = {}
        core = self.agent.core
        for name in sorted(names):
            try:
                if kind == "secret":
                    obj = await core.read_namespaced_secret(name, self.namespace)
                    out[name] = podspec.decode_secret(obj.data)
                else:
                    cm = await core.read_namespaced_config_map(name, self.namespace)
                    out[name] = podspec.decode_config_map(cm.data, cm.binary_data)
            except ApiException as exc:
                if exc.status != 404:
                    raise
        return out

    async def _request_token(self, source: podspec.TokenSource) -> str:
        spec: Json = {
            "expirationSeconds": source.expiration_seconds,
            "boundObjectRef": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": self.name,
                "uid": self.uid,
            },
        }
        if source.audience:
            spec["audiences"] = [source.audience]
        sa = self.pod["spec"].get("serviceAccountName") or "default"
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec}
        result = await self.agent.core.create_namespaced_service_account_token(
            sa, self.namespace, body
        )
        return str(result.status.token)

    def _context(
        self,
        secrets: Mapping[str, Mapping[str, bytes]],
        cms: Mapping[str, Mapping[str, bytes]],
        tokens: Mapping[str, str],
    ) -> podspec.PodContext:
        return podspec.PodContext(
            node_name=self.agent.config.name,
            host_ip=self.agent.host_ip,
            pod_ip=self.pod_ip,
            apiserver_host=self.agent.host_ip,
            apiserver_port=self.agent.apiserver_port,
            secrets=secrets,
            config_maps=cms,
            tokens=tokens,
            node_allocatable=self.agent.allocatable,
        )

    async def _resolve_config(self) -> None:
        """Look up what the pod refers to, write its volumes, build container plans;
        retry while something is missing (CreateContainerConfigError)."""
        while True:
            try:
                secret_names, cm_names = podspec.referenced_objects(self.pod)
                secrets = await self._fetch("secret", secret_names)
                cms = await self._fetch("configmap", cm_names)
                sources = podspec.token_sources(self.pod)
                tokens = {s.key: await self._request_token(s) for s in sources}
                ctx = self._context(secrets, cms, tokens)
                volumes = [
                    podspec.volume_plan(self.pod, v, ctx)
                    for v in self.pod["spec"].get("volumes") or []
                ]
                for spec in [*self.init_specs, *self.main_specs]:
                    image = self.images[spec["name"]]
                    plan = podspec.container_plan(self.pod, spec, image.config, ctx)
                    etc = image.rootfs / "etc"
                    passwd = (etc / "passwd").read_text() if (etc / "passwd").is_file() else ""
                    group = (etc / "group").read_text() if (etc / "group").is_file() else ""
                    uid, gid, extra = podspec.resolve_user(
                        plan.image_user, plan.run_as_user, plan.run_as_group, passwd, group
                    )
                    non_root = (spec.get("securityContext") or {}).get(
                        "runAsNonRoot",
                        (self.pod["spec"].get("securityContext") or {}).get("runAsNonRoot"),
                    )
                    if non_root and uid == 0:
                        raise podspec.ConfigError(
                            "container has runAsNonRoot and image will run as root"
                        )
                    self.plans[spec["name"]] = plan
                    self.users[spec["name"]] = (
                        uid,
                        gid,
                        sorted({*extra, *plan.supplemental_groups}),
                    )
                self._write_volumes(volumes)
                for source in sources:
                    self._side_tasks.append(asyncio.create_task(self._refresh_token(source)))
                return
            except podspec.ConfigError as exc:
                log.warning("pod %s: %s", self.key, exc)
                for state in [*self.init_states, *self.main_states]:
                    state.reason, state.message = "CreateContainerConfigError", str(exc)
                self.mark()
                await asyncio.sleep(CONFIG_RETRY)

    async def _open_host_ports(self) -> None:
        for plan in self.plans.values():
            for hp in plan.host_ports:
                if hp.protocol != "TCP":
                    log.warning(
                        "pod %s: hostPort %d/%s not supported", self.key, hp.host_port, hp.protocol
                    )
                    continue
                target = (self.pod_ip, hp.container_port)
                forwarder = Forwarder(
                    self.agent.host_ip,
                    hp.host_port,
                    functools.partial(lambda t: t, target),
                    name=f"hostPort {hp.host_port} -> {self.key}",
                )
                await forwarder.start()
                self.forwarders.append(forwarder)
                log.info(
                    "pod %s: hostPort %s:%d -> %s:%d",
                    self.key,
                    self.agent.host_ip,
                    hp.host_port,
                    *target,
                )

    def _fs_group(self) -> int | None:
        value = (self.pod["spec"].get("securityContext") or {}).get("fsGroup")
        return int(value) if value is not None else None

    def _write_volumes(self, volumes: list[podspec.VolumePlan]) -> None:
        fs_group = self._fs_group()
        for volume in volumes:
            self.volume_kinds[volume.name] = volume.kind
            directory = self.dir / "volumes" / volume.name
            directory.mkdir(parents=True, exist_ok=True)
            if volume.kind == "emptyDir":
                os.chmod(directory, 0o777)
                if fs_group is not None:
                    os.chown(directory, 0, fs_group)
                    os.chmod(directory, 0o2777)
                continue
            os.chmod(directory, 0o755)
            for f in volume.files:
                self._write_file(directory, f.path, f.content, f.mode)

    def _write_file(self, directory: Path, path: str, content: bytes, mode: int) -> None:
        fs_group = self._fs_group()
        target = directory / path
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_bytes(content)
        if fs_group is not None:
            os.chown(tmp, 0, fs_group)
            mode |= 0o440
        os.chmod(tmp, mode & 0o7777)
        os.replace(tmp, target)

    async def _refresh_token(self, source: podspec.TokenSource) -> None:
        volume, _, path = source.key.partition("/")
        while not self.deleting.is_set():
            await asyncio.sleep(source.expiration_seconds * 0.8)
            try:
                token = await self._request_token(source)
            except ApiException as exc:
                log.warning("pod %s: token refresh failed: %s", self.key, exc.reason)
                continue
            for v in self.pod["spec"].get("volumes") or []:
                if v["name"] == volume:
                    mode = int(
                        (v.get("projected") or {}).get("defaultMode", podspec.DEFAULT_FILE_MODE)
                    )
                    self._write_file(self.dir / "volumes" / volume, path, token.encode(), mode)
            log.info("pod %s: refreshed token %s", self.key, source.key)

    # --- containers ---------------------------------------------------------------

    def _launch_plan(self, spec: Json) -> tuple[Json, Path]:
        plan = self.plans[spec["name"]]
        image = self.images[spec["name"]]
        uid, gid, groups = self.users[spec["name"]]
        self._attempt += 1
        base = self.dir / "containers" / spec["name"]
        shutil.rmtree(base / "layer", ignore_errors=True)
        for sub in ("upper", "work", "root"):
            (base / "layer" / sub).mkdir(parents=True, exist_ok=True)
        mounts = []
        for m in plan.mounts:
            source = self.dir / "volumes" / m.volume
            if m.sub_path:
                source = source / m.sub_path
                if not source.exists():
                    source.mkdir(parents=True)
            read_only = m.read_only or self.volume_kinds.get(m.volume) == "files"
            mounts.append({"source": str(source), "target": m.path, "read_only": read_only})
        etc = self.dir / "etc"
        security = spec.get("securityContext") or {}
        launch = {
            "netns_path": self.net.netns_path if self.net else "",
            "hostname": self._hostname(),
            "rootfs": str(image.rootfs),
            "upper": str(base / "layer" / "upper"),
            "work": str(base / "layer" / "work"),
            "root": str(base / "layer" / "root"),
            "read_only_root": plan.read_only_root,
            "mounts": mounts,
            "files": [
                {"source": str(etc / "hosts"), "target": "/etc/hosts"},
                {"source": str(etc / "resolv.conf"), "target": "/etc/resolv.conf"},
                {"source": str(etc / "hostname"), "target": "/etc/hostname"},
            ],
            "uid": uid,
            "gid": gid,
            "groups": groups,
            "no_new_privs": security.get("allowPrivilegeEscalation") is False,
            "workdir": plan.workdir,
            "argv": list(plan.argv),
            "env": [list(kv) for kv in plan.env],
        }
        return launch, base

    async def _run_once(self, spec: Json, state: ContainerState, *, main: bool) -> int:
        launch, base = self._launch_plan(spec)
        image = self.images[spec["name"]]
        proc = await container.start(launch, base)
        self.procs[spec["name"]] = proc
        state.state, state.reason, state.message = "running", "", ""
        state.started_at, state.finished_at = _now(), None
        state.image_id = image.image_id
        state.container_id = f"tradearena://{self.uid}/{spec['name']}/{proc.pid}"
        startup = podspec.probe_plan(spec, spec.get("startupProbe")) if main else None
        readiness = podspec.probe_plan(spec, spec.get("readinessProbe")) if main else None
        liveness = podspec.probe_plan(spec, spec.get("livenessProbe")) if main else None
        state.started = startup is None
        state.ready = main and readiness is None
        log.info(
            "pod %s: container %s started pid=%d argv=%s",
            self.key,
            spec["name"],
            proc.pid,
            launch["argv"],
        )
        self.mark()
        probe_tasks: list[asyncio.Task[None]] = []

        def start_probes() -> None:
            if readiness:
                probe_tasks.append(
                    asyncio.create_task(self._probe(spec, "readiness", readiness, proc, state))
                )
            if liveness:
                probe_tasks.append(
                    asyncio.create_task(self._probe(spec, "liveness", liveness, proc, state))
                )

        if startup:

            async def startup_then_others() -> None:
                await self._probe(spec, "startup", startup, proc, state, until_success=True)
                state.started = True
                self.mark()
                start_probes()

            probe_tasks.append(asyncio.create_task(startup_then_others()))
        else:
            start_probes()
        try:
            code = await proc.wait()
        finally:
            for task in probe_tasks:
                task.cancel()
        if code < 0:
            code = 128 - code
        self.procs.pop(spec["name"], None)
        state.state, state.exit_code = "terminated", code
        state.reason = "Completed" if code == 0 else "Error"
        state.finished_at = _now()
        state.ready = state.started = False
        if code != 0:
            log.warning(
                "pod %s: container %s exited %d\n%s",
                self.key,
                spec["name"],
                code,
                container.log_tail(base),
            )
        else:
            log.info("pod %s: container %s exited 0", self.key, spec["name"])
        self.mark()
        return code

    async def _probe(
        self,
        spec: Json,
        kind: str,
        plan: podspec.ProbePlan,
        proc: asyncio.subprocess.Process,
        state: ContainerState,
        *,
        until_success: bool = False,
    ) -> None:
        uid, gid, _ = self.users[spec["name"]]
        env = dict(self.plans[spec["name"]].env)

        async def exec_check(p: podspec.ProbePlan) -> tuple[bool, str]:
            return await probes.exec_in(proc.pid, p.command, uid, gid, env, p.timeout)

        def on_result(ok: bool) -> None:
            if kind == "readiness":
                state.ready = ok
                self.mark()
            elif not ok:
                log.warning(
                    "pod %s: container %s failed its %s probe, restarting",
                    self.key,
                    spec["name"],
                    kind,
                )
                self.agent.spawn(container.stop(proc, self._grace()), f"kill {self.key}")

        await probes.run_probe(
            f"{self.key}/{spec['name']} {kind}",
            plan,
            probes.checker(plan, self.pod_ip, exec_check),
            on_result,
            until_success=until_success,
        )

    def _backoff_state(self, state: ContainerState, delay: float) -> None:
        state.last_terminated = state.terminated_json()
        state.state, state.reason = "waiting", "CrashLoopBackOff"
        state.message = (
            f"back-off {delay:g}s restarting failed container={state.name} pod={self.name}"
        )
        state.restart_count += 1
        self.mark()

    async def _run_init(self, spec: Json, state: ContainerState) -> bool:
        delay = 1.0
        while True:
            code = await self._run_once(spec, state, main=False)
            if code == 0:
                return True
            if self.restart_policy == "Never":
                self.terminal = "Failed"
                self.mark()
                await self._teardown_sandbox()
                return False
            self._backoff_state(state, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)

    async def _run_main(self, spec: Json, state: ContainerState) -> None:
        delay = 1.0
        while True:
            started = time.monotonic()
            code = await self._run_once(spec, state, main=True)
            if self.restart_policy == "Never" or (self.restart_policy == "OnFailure" and code == 0):
                return
            if time.monotonic() - started > 2 * MAX_BACKOFF:
                delay = 1.0
            self._backoff_state(state, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)

    # --- status -------------------------------------------------------------------

    def status(self) -> Json:
        status = pod_status(
            restart_policy=self.restart_policy,
            init=self.init_states,
            main=self.main_states,
            pod_ip=self.pod_ip,
            host_ip=self.agent.host_ip,
            start_time=self.start_time,
            previous_conditions=self._conditions,
            now=_now(),
            terminal=self.terminal,
        )
        self._conditions = status["conditions"]
        return status

    async def _report_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            status = self.status()
            try:
                await self.agent.core.patch_namespaced_pod_status(
                    self.name,
                    self.namespace,
                    {"status": status},
                    _content_type="application/merge-patch+json",
                )
            except ApiException as exc:
                if exc.status == 404:
                    return
                log.warning("pod %s: status update failed: %s %s", self.key, exc.status, exc.reason)
                await asyncio.sleep(1)
                self._dirty.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("pod %s: status update failed: %s", self.key, exc)
                await asyncio.sleep(1)
                self._dirty.set()
            await asyncio.sleep(0.05)  # coalesce bursts

    # --- deletion -----------------------------------------------------------------

    def _grace(self) -> float:
        meta = self.pod["metadata"]
        if meta.get("deletionGracePeriodSeconds") is not None:
            return float(meta["deletionGracePeriodSeconds"])
        return float(self.pod["spec"].get("terminationGracePeriodSeconds", 30))

    async def _pre_stop(self, spec: Json, proc: asyncio.subprocess.Process) -> None:
        hook = (spec.get("lifecycle") or {}).get("preStop") or {}
        if "sleep" in hook:
            await asyncio.sleep(float(hook["sleep"].get("seconds", 0)))
        elif "exec" in hook:
            uid, gid, _ = self.users[spec["name"]]
            await probes.exec_in(
                proc.pid,
                tuple(hook["exec"].get("command") or ()),
                uid,
                gid,
                dict(self.plans[spec["name"]].env),
                3600,
            )
        elif "httpGet" in hook:
            plan = podspec.probe_plan(spec, {"httpGet": hook["httpGet"]})
            if plan:
                await probes.http_get(
                    plan.host or self.pod_ip,
                    plan.port,
                    plan.path,
                    scheme=plan.scheme,
                    headers=plan.headers,
                    timeout_s=3600,
                )

    async def _stop_container(
        self, spec: Json, proc: asyncio.subprocess.Process, grace: float
    ) -> None:
        deadline = time.monotonic() + grace
        if grace > 0:
            try:
                await asyncio.wait_for(self._pre_stop(spec, proc), grace)
            except TimeoutError:
                pass
            except Exception as exc:
                log.warning("pod %s: preStop of %s failed: %s", self.key, spec["name"], exc)
        remaining = max(deadline - time.monotonic(), 2.0 if grace > 0 else 0.0)
        code = await container.stop(proc, remaining)
        log.info("pod %s: container %s stopped (exit %d)", self.key, spec["name"], code)

    async def _terminate(self) -> None:
        grace = self._grace() if not self.agent.stopping else min(self._grace(), 5.0)
        if self.gone:
            grace = 0
        specs = {s["name"]: s for s in [*self.init_specs, *self.main_specs]}
        running = [(specs[n], p) for n, p in list(self.procs.items())]
        if running:
            log.info("pod %s: stopping %d container(s), grace %gs", self.key, len(running), grace)
        await asyncio.gather(*(self._stop_container(s, p, grace) for s, p in running))
        for state in [*self.init_states, *self.main_states]:
            if state.state == "running":
                state.state, state.reason, state.exit_code = "terminated", "Error", 137
        await self._teardown_sandbox()

    async def _teardown_sandbox(self) -> None:
        for forwarder in self.forwarders:
            await forwarder.close()
        self.forwarders.clear()
        if self.net is not None:
            await asyncio.to_thread(network.remove_netns, self.net.netns)
            self.net = None
        if self.pod_ip and self.terminal is None:
            self.agent.addresses.release(self.pod_ip)

    async def _delete_object(self) -> None:
        try:
            await self.agent.core.delete_namespaced_pod(
                self.name,
                self.namespace,
                body={"gracePeriodSeconds": 0, "preconditions": {"uid": self.uid}},
                grace_period_seconds=0,
            )
        except ApiException as exc:
            if exc.status not in (404, 409):
                log.warning("pod %s: delete failed: %s %s", self.key, exc.status, exc.reason)
        finally:
            if self.pod_ip:
                self.agent.addresses.release(self.pod_ip)
            shutil.rmtree(self.dir, ignore_errors=True)
