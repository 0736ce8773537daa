"""Turn this process into one container, then exec its command.

Run as root by the node, standard library only (started with ``python -I -S`` so it
costs a few milliseconds): ``python -I -S launcher.py plan.json``. In order it
joins the pod's network namespace, unshares a private mount namespace and a UTS
namespace (hostname = pod name), mounts the root (an overlay of the cached image
rootfs with an upper layer under the pod's state dir, remounted read-only when the
container asks for a read-only root), /proc, a minimal /dev, /sys read-only, the
volumes and the node-written /etc files, chroots, drops to the container's user and
groups (no_new_privs when privilege escalation is off), chdirs and execs. The pid
the node started is therefore the container's main process. Any failure before the
exec exits 127 with the reason on stderr (the container log).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import socket
import sys
import warnings  # noqa: F401 - os.execvpe imports it lazily, after the chroot

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWNET = 0x40000000
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_NO_NEW_PRIVS = 38

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {source} on {target}",
    )


def _touch(path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not os.path.exists(path):
        with open(path, "a"):
            pass


def _bind(source: str, target: str, read_only: bool) -> None:
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        _touch(target)
    mount(source, target, None, MS_BIND | MS_REC)
    if read_only:
        mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY)


def _inside(root: str, path: str) -> str:
    """`path` inside `root`, following symlinks as the container would see them
    (an absolute link such as /var/run -> /run stays under `root`)."""
    parts = [p for p in path.split("/") if p and p != "."]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *resolved, part)
        if os.path.islink(candidate):
            hops += 1
            if hops > 40:
                raise OSError(f"too many levels of symbolic links in {path}")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p and p != "."] + parts
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def _dev(root: str) -> None:
    dev = _inside(root, "/dev")
    os.makedirs(dev, exist_ok=True)
    mount("tmpfs", dev, "tmpfs", MS_NOSUID, "mode=755,size=65536k")
    for name in ("null", "zero", "full", "random", "urandom", "tty"):
        target = os.path.join(dev, name)
        _touch(target)
        mount(f"/dev/{name}", target, None, MS_BIND)
    os.makedirs(os.path.join(dev, "pts"))
    mount(
        "devpts",
        os.path.join(dev, "pts"),
        "devpts",
        MS_NOSUID | MS_NOEXEC,
        "newinstance,ptmxmode=0666,mode=0620",
    )
    os.makedirs(os.path.join(dev, "shm"))
    mount(
        "shm",
        os.path.join(dev, "shm"),
        "tmpfs",
        MS_NOSUID | MS_NODEV | MS_NOEXEC,
        "mode=1777,size=65536k",
    )
    os.makedirs(os.path.join(dev, "mqueue"))
    for link, to in (
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ):
        os.symlink(to, os.path.join(dev, link))


def launch(plan: dict) -> None:  # type: ignore[type-arg]
    netns = os.open(plan["netns_path"], os.O_RDONLY)
    _check(_libc.setns(netns, CLONE_NEWNET), "setns net")
    os.close(netns)
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWUTS), "unshare")
    mount(None, "/", None, MS_REC | MS_PRIVATE)
    socket.sethostname(plan["hostname"])

    root = plan["root"]
    os.makedirs(root, exist_ok=True)
    mount(
        "overlay",
        root,
        "overlay",
        0,
        f"lowerdir={plan['rootfs']},upperdir={plan['upper']},workdir={plan['work']}",
    )
    os.makedirs(_inside(root, "/proc"), exist_ok=True)
    mount("proc", _inside(root, "/proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    _dev(root)
    os.makedirs(_inside(root, "/sys"), exist_ok=True)
    sys_flags = MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC
    with contextlib.suppress(OSError):  # /sys is optional
        mount("sysfs", _inside(root, "/sys"), "sysfs", sys_flags)
    for m in sorted(plan["mounts"], key=lambda m: m["target"].count("/")):
        _bind(m["source"], _inside(root, m["target"]), m["read_only"])
    for f in plan["files"]:
        _bind(f["source"], _inside(root, f["target"]), False)
    workdir = plan["workdir"] or "/"
    os.makedirs(_inside(root, workdir), exist_ok=True)
    if plan["read_only_root"]:
        mount(None, root, None, MS_REMOUNT | MS_BIND | MS_RDONLY)

    os.chroot(root)
    os.chdir("/")
    os.setgroups(plan["groups"])
    os.setgid(plan["gid"])
    os.setuid(plan["uid"])
    if plan["no_new_privs"]:
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl no_new_privs")
    try:
        os.chdir(workdir)
    except OSError as exc:
        raise OSError(exc.errno, f"chdir to working directory {workdir}: {exc.strerror}") from exc
    env = dict(plan["env"])
    os.execvpe(plan["argv"][0], plan["argv"], env)


def main() -> None:
    with open(sys.argv[1]) as f:
        plan = json.load(f)
    try:
        launch(plan)
    except BaseException as exc:
        print(f"container start failed: {exc}", file=sys.stderr, flush=True)
        os._exit(127)


if __name__ == "__main__":
    main()
