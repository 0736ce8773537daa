"""The project's container image for tests that run it: built from the Dockerfile without a
container engine by scripts/build-image.sh (cached by a hash of its inputs in
~/.cache/tradearena/image/<key>/), read back as its root filesystem and OCI config.

    image = ensure_image()           # builds on a cache miss (minutes), else instant
    image.rootfs                     # the unpacked root filesystem
    image.argv(["lobby"])            # ["tradearena", "lobby"]: entrypoint + command
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tradearena.testing.paths import REPO

BUILD_SCRIPT = REPO / "scripts" / "build-image.sh"
REPOSITORY = "tradearena"
# The image reference names the build by the first characters of its key.
TAG_LENGTH = 12
CONFIG_FILE = "config.json"
ROOTFS_DIR = "rootfs"
# Build output kept in an error message.
_ERROR_TAIL_LINES = 40


class ImageBuildError(RuntimeError):
    """scripts/build-image.sh failed, or its output directory is not a complete image."""


@dataclass(frozen=True)
class BuiltImage:
    """One built image: where its root filesystem is and how its config says to run it."""

    key: str
    name: str
    rootfs: Path
    user: str
    entrypoint: list[str]
    cmd: list[str]
    workdir: str
    env: dict[str, str]

    @property
    def repository(self) -> str:
        return self.name.rpartition(":")[0]

    @property
    def tag(self) -> str:
        return self.name.rpartition(":")[2]

    def argv(self, args: Sequence[str] | None = None) -> list[str]:
        """What a container runtime executes: the entrypoint followed by `args` (a pod's
        `args`), or by the image's CMD when none are given."""
        return [*self.entrypoint, *(self.cmd if args is None else args)]


def load_image(directory: Path) -> BuiltImage:
    """Read a built image from its cache directory (`<key>/rootfs`, `<key>/config.json`)."""
    directory = Path(directory)
    config_path = directory / CONFIG_FILE
    rootfs = directory / ROOTFS_DIR
    if not config_path.is_file() or not rootfs.is_dir():
        raise ImageBuildError(
            f"{directory} is not a built image (no {CONFIG_FILE} or {ROOTFS_DIR}/)"
        )
    config = json.loads(config_path.read_text())
    env: dict[str, str] = {}
    for item in config.get("Env") or []:
        name, _, value = item.partition("=")
        env[name] = value
    key = directory.name
    return BuiltImage(
        key=key,
        name=f"{REPOSITORY}:{key[:TAG_LENGTH]}",
        rootfs=rootfs,
        user=config.get("User") or "",
        entrypoint=list(config.get("Entrypoint") or []),
        cmd=list(config.get("Cmd") or []),
        workdir=config.get("WorkingDir") or "/",
        env=env,
    )


def ensure_image() -> BuiltImage:
    """The image of the working tree as it is now: built by scripts/build-image.sh when
    its cache has no image for these inputs (needs root; minutes on a cold machine)."""
    build = subprocess.run(
        [str(BUILD_SCRIPT)],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    if build.returncode != 0:
        tail = "\n".join(build.stdout.splitlines()[-_ERROR_TAIL_LINES:])
        raise ImageBuildError(
            f"{BUILD_SCRIPT.relative_to(REPO)} failed (exit {build.returncode}):\n{tail}"
        )
    where = subprocess.run(
        [str(BUILD_SCRIPT), "--print-dir"],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=True,
    )
    return load_image(Path(where.stdout.strip()))
