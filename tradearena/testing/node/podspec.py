"""Pure resolution of a pod spec into what the node must do to run it.

Everything here is a function of its arguments (the pod as the API server serves it,
as JSON-like dicts, plus the Secrets, ConfigMaps, tokens and addresses the node
looked up): no I/O, so every Kubernetes rule is unit-tested on its own. The rules
follow the kubelet's: ``$(VAR)`` expansion, env ordering (envFrom, then env, then
the KUBERNETES_SERVICE_* variables), Secret/ConfigMap/downward-API references,
volume file projection with modes, command/args against the image
Entrypoint/Cmd, and the user a container runs as.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

Json = Mapping[str, Any]

DEFAULT_FILE_MODE = 0o644
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


class ConfigError(Exception):
    """The pod references something missing (kubelet: CreateContainerConfigError)."""


@dataclass(frozen=True)
class ImageConfig:
    """The OCI image config fields a container starts from."""

    user: str = ""
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    workdir: str = ""
    env: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_json(cls, document: Json) -> ImageConfig:
        """From an OCI image config (fields under ``config``, or at the top level)."""
        config = document.get("config", document) or {}
        env = []
        for item in config.get("Env") or []:
            name, _, value = str(item).partition("=")
            env.append((name, value))
        return cls(
            user=str(config.get("User") or ""),
            entrypoint=tuple(config.get("Entrypoint") or ()),
            cmd=tuple(config.get("Cmd") or ()),
            workdir=str(config.get("WorkingDir") or ""),
            env=tuple(env),
        )


@dataclass(frozen=True)
class PodContext:
    """What the node knows when it starts a pod's containers."""

    node_name: str
    host_ip: str
    pod_ip: str
    apiserver_host: str
    apiserver_port: int
    secrets: Mapping[str, Mapping[str, bytes]] = field(default_factory=dict)
    config_maps: Mapping[str, Mapping[str, bytes]] = field(default_factory=dict)
    tokens: Mapping[str, str] = field(default_factory=dict)  # token_key() -> token
    node_allocatable: Mapping[str, str] = field(default_factory=dict)


# --- $(VAR) expansion ------------------------------------------------------------


def expand(text: str, mapping: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion: ``$$`` is a literal ``$``; an undefined or
    malformed reference stays as written."""
    out: list[str] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            end = text.find(")", i + 2)
            if end < 0:
                out.append(text[i:])
                break
            name = text[i + 2 : end]
            if name in mapping:
                out.append(mapping[name])
            else:
                out.append(text[i : end + 1])
            i = end + 1
        else:
            out.append("$")
            out.append(nxt)
            i += 2
    return "".join(out)


# --- quantities ------------------------------------------------------------------

_SUFFIXES = {
    "Ki": Decimal(2**10),
    "Mi": Decimal(2**20),
    "Gi": Decimal(2**30),
    "Ti": Decimal(2**40),
    "Pi": Decimal(2**50),
    "Ei": Decimal(2**60),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}


def parse_quantity(text: str | int | float) -> Decimal:
    """A Kubernetes resource quantity ("500m", "64Mi", "1e3", "2") as a number."""
    s = str(text).strip()
    match = re.fullmatch(r"([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)", s)
    if not match:
        raise ValueError(f"bad quantity {text!r}")
    number, suffix = match.groups()
    if suffix and suffix not in _SUFFIXES:
        raise ValueError(f"bad quantity suffix in {text!r}")
    return Decimal(number) * (_SUFFIXES[suffix] if suffix else 1)


def resource_value(container: Json, resource: str, divisor: str | None, allocatable: Json) -> str:
    """The downward API's value for ``limits.cpu`` etc.: rounded up to the divisor;
    a missing limit reads as the node's allocatable, a missing request as the limit
    (or 0)."""
    kind, _, name = resource.partition(".")
    resources = container.get("resources") or {}
    limits = resources.get("limits") or {}
    requests = resources.get("requests") or {}
    if kind == "limits":
        raw = limits.get(name, allocatable.get(name, "0"))
    elif kind == "requests":
        raw = requests.get(name, limits.get(name, "0"))
    else:
        raise ConfigError(f"unsupported resource {resource!r}")
    value = parse_quantity(str(raw))
    div = parse_quantity(divisor) if divisor else Decimal(0)
    if div == 0:  # the API server defaults an unset divisor to "0", meaning 1
        div = Decimal(1)
    return str(math.ceil(value / div))


# --- downward API fields ---------------------------------------------------------

_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.*)'\]$")


def _format_map(values: Json) -> str:
    return "\n".join(f'{k}="{v}"' for k, v in sorted(values.items()))


def field_value(pod: Json, path: str, ctx: PodContext) -> str:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    sub = _SUBSCRIPT.match(path)
    if sub:
        return str((meta.get(sub.group(1)) or {}).get(sub.group(2), ""))
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName") or ctx.node_name,
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": ctx.pod_ip,
        "status.podIPs": ctx.pod_ip,
        "status.hostIP": ctx.host_ip,
        "status.hostIPs": ctx.host_ip,
    }
    if path in simple:
        return str(simple[path])
    if path in ("metadata.labels", "metadata.annotations"):
        return _format_map(meta.get(path.split(".")[1]) or {})
    raise ConfigError(f"unsupported fieldRef {path!r}")


# --- env -------------------------------------------------------------------------


def _lookup(
    source: Mapping[str, Mapping[str, bytes]], kind: str, ref: Json
) -> Mapping[str, bytes] | None:
    name = ref.get("name", "")
    if name in source:
        return source[name]
    if ref.get("optional"):
        return None
    raise ConfigError(f'{kind} "{name}" not found')


def _key(source: Mapping[str, Mapping[str, bytes]], kind: str, ref: Json) -> str | None:
    data = _lookup(source, kind, ref)
    if data is None:
        return None
    key = ref.get("key", "")
    if key not in data:
        if ref.get("optional"):
            return None
        raise ConfigError(f'couldn\'t find key {key} in {kind} "{ref.get("name")}"')
    return data[key].decode("utf-8", "replace")


def container_env(pod: Json, container: Json, ctx: PodContext) -> list[tuple[str, str]]:
    """The container's own environment, in kubelet order, expanded (image Env not
    included; see `final_env`)."""
    values: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        if "configMapRef" in source:
            data = _lookup(ctx.config_maps, "configmap", source["configMapRef"])
        elif "secretRef" in source:
            data = _lookup(ctx.secrets, "secret", source["secretRef"])
        else:
            continue
        for key, raw in (data or {}).items():
            values[prefix + key] = raw.decode("utf-8", "replace")
    service_env = {
        "KUBERNETES_SERVICE_HOST": ctx.apiserver_host,
        "KUBERNETES_SERVICE_PORT": str(ctx.apiserver_port),
        "KUBERNETES_SERVICE_PORT_HTTPS": str(ctx.apiserver_port),
        "KUBERNETES_PORT": f"tcp://{ctx.apiserver_host}:{ctx.apiserver_port}",
    }
    for item in container.get("env") or []:
        name = item["name"]
        if "value" in item or "valueFrom" not in item:
            mapping = {**service_env, **values}
            values[name] = expand(str(item.get("value", "")), mapping)
            continue
        source = item["valueFrom"]
        resolved: str | None
        if "fieldRef" in source:
            resolved = field_value(pod, source["fieldRef"]["fieldPath"], ctx)
        elif "resourceFieldRef" in source:
            ref = source["resourceFieldRef"]
            target = _container_named(pod, ref.get("containerName")) or container
            resolved = resource_value(
                target, ref["resource"], ref.get("divisor"), ctx.node_allocatable
            )
        elif "secretKeyRef" in source:
            resolved = _key(ctx.secrets, "secret", source["secretKeyRef"])
        elif "configMapKeyRef" in source:
            resolved = _key(ctx.config_maps, "configmap", source["configMapKeyRef"])
        else:
            raise ConfigError(f"unsupported valueFrom for {name}")
        if resolved is not None:
            values[name] = resolved
    for key, value in service_env.items():
        values.setdefault(key, value)
    return list(values.items())


def final_env(image: ImageConfig, env: Sequence[tuple[str, str]]) -> dict[str, str]:
    """Image Env overridden by the container's."""
    merged = dict(image.env)
    merged.update(env)
    return merged


def _container_named(pod: Json, name: str | None) -> Json | None:
    if not name:
        return None
    spec = pod.get("spec") or {}
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        if c.get("name") == name:
            return c  # type: ignore[no-any-return]
    return None


def argv(image: ImageConfig, container: Json, env: Mapping[str, str]) -> list[str]:
    """Kubernetes command/args over the image Entrypoint/Cmd, expanded."""
    command = container.get("command")
    args = container.get("args")
    if command:
        result = [*command, *(args or [])]
    elif args:
        result = [*image.entrypoint, *args]
    else:
        result = [*image.entrypoint, *image.cmd]
    result = [expand(str(a), env) if (command or args) else str(a) for a in result]
    if not result:
        raise ConfigError("no command specified")
    return result


# --- users -----------------------------------------------------------------------


def _table(text: str) -> list[list[str]]:
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]


def resolve_user(
    image_user: str,
    run_as_user: int | None,
    run_as_group: int | None,
    passwd: str,
    group: str,
) -> tuple[int, int, list[int]]:
    """(uid, gid, supplementary gids from /etc/group) as a container runtime sets them."""
    users = _table(passwd)
    groups = _table(group)
    name: str | None = None
    uid: int
    gid: int | None = None
    if run_as_user is not None:
        uid = run_as_user
    else:
        user_part, _, group_part = image_user.partition(":")
        if not user_part:
            uid = 0
        elif user_part.isdigit():
            uid = int(user_part)
        else:
            match = [u for u in users if u[0] == user_part and len(u) >= 4]
            if not match:
                raise ConfigError(f"unable to find user {user_part} in the image")
            uid = int(match[0][2])
        if group_part:
            if group_part.isdigit():
                gid = int(group_part)
            else:
                gm = [g for g in groups if g[0] == group_part and len(g) >= 3]
                if not gm:
                    raise ConfigError(f"unable to find group {group_part} in the image")
                gid = int(gm[0][2])
    for entry in users:
        if len(entry) >= 4 and entry[2].isdigit() and int(entry[2]) == uid:
            name = entry[0]
            if gid is None:
                gid = int(entry[3])
            break
    if run_as_group is not None:
        gid = run_as_group
    final_gid = gid if gid is not None else 0
    extra = [
        int(g[2])
        for g in groups
        if len(g) >= 4 and name and name in g[3].split(",") and g[2].isdigit()
    ]
    return uid, final_gid, sorted(set(extra) - {final_gid})


# --- volumes ---------------------------------------------------------------------


@dataclass(frozen=True)
class VolumeFile:
    path: str
    content: bytes
    mode: int


@dataclass(frozen=True)
class TokenSource:
    """A projected service-account token the node must request (and refresh)."""

    key: str
    audience: str | None
    expiration_seconds: int


@dataclass(frozen=True)
class VolumePlan:
    name: str
    kind: str  # "emptyDir" or "files"
    files: tuple[VolumeFile, ...] = ()


def token_key(volume: str, path: str) -> str:
    return f"{volume}/{path}"


def token_sources(pod: Json) -> list[TokenSource]:
    out = []
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        for source in (volume.get("projected") or {}).get("sources") or []:
            token = source.get("serviceAccountToken")
            if token:
                out.append(
                    TokenSource(
                        token_key(volume["name"], token["path"]),
                        token.get("audience") or None,
                        int(token.get("expirationSeconds") or 3600),
                    )
                )
    return out


def referenced_objects(pod: Json) -> tuple[set[str], set[str]]:
    """Names of the Secrets and ConfigMaps the pod's env and volumes refer to."""
    secrets: set[str] = set()
    config_maps: set[str] = set()
    spec = pod.get("spec") or {}
    for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]:
        for source in c.get("envFrom") or []:
            if "secretRef" in source:
                secrets.add(source["secretRef"]["name"])
            if "configMapRef" in source:
                config_maps.add(source["configMapRef"]["name"])
        for item in c.get("env") or []:
            vf = item.get("valueFrom") or {}
            if "secretKeyRef" in vf:
                secrets.add(vf["secretKeyRef"]["name"])
            if "configMapKeyRef" in vf:
                config_maps.add(vf["configMapKeyRef"]["name"])
    for volume in spec.get("volumes") or []:
        if "secret" in volume:
            secrets.add(volume["secret"]["secretName"])
        if "configMap" in volume:
            config_maps.add(volume["configMap"]["name"])
        for source in (volume.get("projected") or {}).get("sources") or []:
            if "secret" in source:
                secrets.add(source["secret"]["name"])
            if "configMap" in source:
                config_maps.add(source["configMap"]["name"])
    return secrets, config_maps


def _key_files(
    data: Mapping[str, bytes] | None,
    items: Sequence[Json] | None,
    default_mode: int,
    what: str,
    optional: bool,
) -> list[VolumeFile]:
    if data is None:
        return []
    if not items:
        return [VolumeFile(k, v, default_mode) for k, v in sorted(data.items())]
    out = []
    for item in items:
        key = item["key"]
        if key not in data:
            if optional:
                continue
            raise ConfigError(f"configmap/secret key {key!r} missing from {what}")
        out.append(VolumeFile(item["path"], data[key], int(item.get("mode", default_mode))))
    return out


def _downward_files(
    pod: Json, items: Sequence[Json], default_mode: int, ctx: PodContext
) -> list[VolumeFile]:
    out = []
    for item in items:
        if "fieldRef" in item:
            value = field_value(pod, item["fieldRef"]["fieldPath"], ctx)
        elif "resourceFieldRef" in item:
            ref = item["resourceFieldRef"]
            container = _container_named(pod, ref.get("containerName")) or {}
            value = resource_value(
                container, ref["resource"], ref.get("divisor"), ctx.node_allocatable
            )
        else:
            raise ConfigError(f"unsupported downwardAPI item {item}")
        out.append(VolumeFile(item["path"], value.encode(), int(item.get("mode", default_mode))))
    return out


def _source_data(
    source: Mapping[str, Mapping[str, bytes]], name: str, optional: bool, kind: str
) -> Mapping[str, bytes] | None:
    if name in source:
        return source[name]
    if optional:
        return None
    raise ConfigError(f'{kind} "{name}" not found')


def volume_plan(pod: Json, volume: Json, ctx: PodContext) -> VolumePlan:
    name = volume["name"]
    if "emptyDir" in volume:
        return VolumePlan(name, "emptyDir")
    files: list[VolumeFile] = []
    if "secret" in volume:
        s = volume["secret"]
        mode = int(s.get("defaultMode", DEFAULT_FILE_MODE))
        opt = bool(s.get("optional"))
        data = _source_data(ctx.secrets, s["secretName"], opt, "secret")
        files = _key_files(data, s.get("items"), mode, s["secretName"], opt)
    elif "configMap" in volume:
        c = volume["configMap"]
        mode = int(c.get("defaultMode", DEFAULT_FILE_MODE))
        opt = bool(c.get("optional"))
        data = _source_data(ctx.config_maps, c["name"], opt, "configmap")
        files = _key_files(data, c.get("items"), mode, c["name"], opt)
    elif "downwardAPI" in volume:
        d = volume["downwardAPI"]
        mode = int(d.get("defaultMode", DEFAULT_FILE_MODE))
        files = _downward_files(pod, d.get("items") or [], mode, ctx)
    elif "projected" in volume:
        p = volume["projected"]
        mode = int(p.get("defaultMode", DEFAULT_FILE_MODE))
        for source in p.get("sources") or []:
            if "serviceAccountToken" in source:
                path = source["serviceAccountToken"]["path"]
                key = token_key(name, path)
                if key not in ctx.tokens:
                    raise ConfigError(f"no token for {key}")
                files.append(VolumeFile(path, ctx.tokens[key].encode(), mode))
            elif "configMap" in source:
                c = source["configMap"]
                opt = bool(c.get("optional"))
                data = _source_data(ctx.config_maps, c["name"], opt, "configmap")
                files += _key_files(data, c.get("items"), mode, c["name"], opt)
            elif "secret" in source:
                s = source["secret"]
                opt = bool(s.get("optional"))
                data = _source_data(ctx.secrets, s["name"], opt, "secret")
                files += _key_files(data, s.get("items"), mode, s["name"], opt)
            elif "downwardAPI" in source:
                files += _downward_files(pod, source["downwardAPI"].get("items") or [], mode, ctx)
            else:
                raise ConfigError(f"unsupported projected source in volume {name}")
    else:
        kinds = sorted(set(volume) - {"name"})
        raise ConfigError(f"unsupported volume type {kinds} for volume {name}")
    for f in files:
        if f.path.startswith("/") or ".." in f.path.split("/"):
            raise ConfigError(f"bad path {f.path!r} in volume {name}")
    return VolumePlan(name, "files", tuple(files))


def decode_secret(data: Mapping[str, str] | None) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in (data or {}).items()}


def decode_config_map(
    data: Mapping[str, str] | None, binary: Mapping[str, str] | None
) -> dict[str, bytes]:
    out = {k: v.encode() for k, v in (data or {}).items()}
    out.update({k: base64.b64decode(v) for k, v in (binary or {}).items()})
    return out


# --- containers ------------------------------------------------------------------


@dataclass(frozen=True)
class MountPlan:
    volume: str
    path: str
    read_only: bool
    sub_path: str = ""


@dataclass(frozen=True)
class HostPort:
    host_port: int
    container_port: int
    protocol: str


@dataclass(frozen=True)
class ContainerPlan:
    name: str
    image: str
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...]
    run_as_user: int | None
    run_as_group: int | None
    supplemental_groups: tuple[int, ...]
    image_user: str
    workdir: str
    read_only_root: bool
    mounts: tuple[MountPlan, ...]
    host_ports: tuple[HostPort, ...]


def _security(pod: Json, container: Json, key: str) -> Any:
    csc = container.get("securityContext") or {}
    if key in csc:
        return csc[key]
    return ((pod.get("spec") or {}).get("securityContext") or {}).get(key)


def container_plan(
    pod: Json, container: Json, image: ImageConfig, ctx: PodContext
) -> ContainerPlan:
    env_list = container_env(pod, container, ctx)
    env = final_env(image, env_list)
    volume_names = {v["name"] for v in (pod.get("spec") or {}).get("volumes") or []}
    mounts = []
    for m in container.get("volumeMounts") or []:
        if m["name"] not in volume_names:
            raise ConfigError(f"volume {m['name']!r} not found")
        sub_path = m.get("subPath", "")
        if "subPathExpr" in m:
            sub_path = expand(m["subPathExpr"], dict(env_list))
        mounts.append(MountPlan(m["name"], m["mountPath"], bool(m.get("readOnly")), sub_path))
    psc = (pod.get("spec") or {}).get("securityContext") or {}
    groups = [int(g) for g in psc.get("supplementalGroups") or []]
    if psc.get("fsGroup") is not None:
        groups.append(int(psc["fsGroup"]))
    host_ports = tuple(
        HostPort(int(p["hostPort"]), int(p["containerPort"]), p.get("protocol", "TCP"))
        for p in container.get("ports") or []
        if p.get("hostPort")
    )
    run_as_user = _security(pod, container, "runAsUser")
    run_as_group = _security(pod, container, "runAsGroup")
    return ContainerPlan(
        name=container["name"],
        image=container.get("image", ""),
        argv=tuple(argv(image, container, env)),
        env=tuple(env.items()),
        run_as_user=int(run_as_user) if run_as_user is not None else None,
        run_as_group=int(run_as_group) if run_as_group is not None else None,
        supplemental_groups=tuple(sorted(set(groups))),
        image_user=image.user,
        workdir=container.get("workingDir") or image.workdir or "/",
        read_only_root=bool(_security(pod, container, "readOnlyRootFilesystem")),
        mounts=tuple(mounts),
        host_ports=host_ports,
    )


# --- probes ----------------------------------------------------------------------


@dataclass(frozen=True)
class ProbePlan:
    kind: str  # "http", "tcp", "exec"
    port: int = 0
    host: str = ""
    path: str = "/"
    scheme: str = "HTTP"
    headers: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] = ()
    initial_delay: float = 0
    period: float = 10
    timeout: float = 1
    success_threshold: int = 1
    failure_threshold: int = 3


def _port(container: Json, port: int | str) -> int:
    if isinstance(port, int) or str(port).isdigit():
        return int(port)
    for p in container.get("ports") or []:
        if p.get("name") == port:
            return int(p["containerPort"])
    raise ConfigError(f"port {port!r} not found in container {container.get('name')}")


def probe_plan(container: Json, probe: Json | None) -> ProbePlan | None:
    if not probe:
        return None
    timing = {
        "initial_delay": float(probe.get("initialDelaySeconds", 0)),
        "period": float(probe.get("periodSeconds", 10)),
        "timeout": float(probe.get("timeoutSeconds", 1)),
        "success_threshold": int(probe.get("successThreshold", 1)),
        "failure_threshold": int(probe.get("failureThreshold", 3)),
    }
    if "httpGet" in probe:
        h = probe["httpGet"]
        return ProbePlan(
            "http",
            port=_port(container, h["port"]),
            host=h.get("host", ""),
            path=h.get("path", "/"),
            scheme=h.get("scheme", "HTTP"),
            headers=tuple((x["name"], x["value"]) for x in h.get("httpHeaders") or []),
            **timing,  # type: ignore[arg-type]
        )
    if "tcpSocket" in probe:
        t = probe["tcpSocket"]
        return ProbePlan(
            "tcp",
            port=_port(container, t["port"]),
            host=t.get("host", ""),
            **timing,  # type: ignore[arg-type]
        )
    if "exec" in probe:
        return ProbePlan("exec", command=tuple(probe["exec"].get("command") or ()), **timing)  # type: ignore[arg-type]
    raise ConfigError("unsupported probe handler")


def hosts_file(
    pod_ip: str, hostname: str, services: Mapping[tuple[str, str], str], namespace: str
) -> str:
    """/etc/hosts for a pod: itself plus every Service by the names cluster DNS would
    answer from the pod's namespace (``services``: (namespace, name) -> ClusterIP):
    the bare name only for its own namespace's Services."""
    lines = [
        "# Kubernetes-managed hosts file (tradearena test node).",
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        f"{pod_ip}\t{hostname}",
    ]
    for (ns, name), ip in sorted(services.items()):
        names = [name] if ns == namespace else []
        names += [f"{name}.{ns}", f"{name}.{ns}.svc", f"{name}.{ns}.svc.cluster.local"]
        lines.append(f"{ip}\t" + " ".join(names))
    return "\n".join(lines) + "\n"
