"""The project's real container image (scripts/build-image.sh, cached by its inputs), run
from its exported root filesystem with chroot as the image's own user, env and working
directory: no compiler and no pip in it, and every `tradearena` subcommand starts."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tradearena.launcher.cli import _parser
from tradearena.testing.image import (
    BUILD_SCRIPT,
    BuiltImage,
    ImageBuildError,
    ensure_image,
    load_image,
)
from tradearena.testing.paths import REPO

pytestmark = pytest.mark.image

CHROOT = shutil.which("chroot") or "/usr/sbin/chroot"
COMPILER = re.compile(r"(^|-)(gcc|cc|c\+\+|g\+\+|cpp|clang|clang\+\+|tcc)(-[0-9.]+)?$")
# What each component imports once running (native wheels must load on the image's libc).
RUNTIME_MODULES = (
    "aiohttp",
    "argon2",
    "asyncpg",
    "jwt",
    "kopf",
    "kubernetes_asyncio",
    "prometheus_client",
    "psycopg",
    "redis",
    "socketio",
    "uvloop",
    "yaml",
    "yoyo",
)


def _subcommands() -> list[str]:
    (action,) = (a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(action.choices)


def _dockerfile(keyword: str) -> str:
    """The argument of the Dockerfile's last `keyword` instruction (the final stage's)."""
    lines = [
        line.split(maxsplit=1)[1]
        for line in (REPO / "Dockerfile").read_text().splitlines()
        if line.split(maxsplit=1)[:1] == [keyword]
    ]
    return lines[-1]


def _run(
    image: BuiltImage, argv: list[str], *, as_root: bool = False
) -> subprocess.CompletedProcess[str]:
    """`argv` in a chroot of the image's root filesystem, with the image's env, working
    directory and (unless `as_root`) user, as a container runtime would start it."""
    userspec = "0:0" if as_root else image.user
    return subprocess.run(
        [
            CHROOT,
            f"--userspec={userspec}",
            str(image.rootfs),
            "/usr/bin/env",
            f"--chdir={image.workdir}",
            *argv,
        ],
        env=image.env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _path_dirs(image: BuiltImage) -> list[Path]:
    dirs = [image.rootfs / d.lstrip("/") for d in image.env["PATH"].split(":")]
    return [d for d in dirs if d.is_dir()]


@pytest.fixture(scope="module")
def image() -> BuiltImage:
    return ensure_image()


def test_config_is_what_the_dockerfile_says(image: BuiltImage) -> None:
    assert image.entrypoint == ["tradearena"] == json.loads(_dockerfile("ENTRYPOINT"))
    assert image.cmd == json.loads(_dockerfile("CMD"))
    assert image.workdir == _dockerfile("WORKDIR") == "/tmp"
    assert image.user == _dockerfile("USER")
    assert image.env["HOME"] == "/tmp" and image.env["PATH"].startswith("/opt/tradearena/bin:")
    assert image.name == f"tradearena:{image.key[:12]}"
    assert (image.repository, image.tag) == ("tradearena", image.key[:12])
    assert image.argv(["lobby"]) == ["tradearena", "lobby"]


def test_user_is_numeric_and_not_root(image: BuiltImage) -> None:
    uid, _, gid = image.user.partition(":")
    assert uid.isdigit() and int(uid) > 0, image.user
    assert gid.isdigit() and int(gid) > 0, image.user
    ran = _run(image, ["python", "-c", "import os; print(os.getuid(), os.getgid(), os.getcwd())"])
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == [uid, gid, image.workdir]


def test_the_user_has_a_name_without_a_user_variable(image: BuiltImage) -> None:
    """Kubernetes sets no USER; getpass.getuser() (kopf's peering id) then reads passwd."""
    assert "USER" not in image.env
    ran = _run(image, ["python", "-c", "import getpass; print(getpass.getuser())"])
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "tradearena"


def test_no_compiler_on_path(image: BuiltImage) -> None:
    dirs = _path_dirs(image)
    names = {name for d in dirs for name in os.listdir(d)}
    assert "tradearena" in names and "python3" in names, "PATH dirs resolved in the rootfs"
    assert not sorted(n for n in names if COMPILER.search(n))
    assert not list(image.rootfs.glob("usr/lib/gcc/*/*/cc1*")), "a compiler proper"


def test_no_pip(image: BuiltImage) -> None:
    names = {name for d in _path_dirs(image) for name in os.listdir(d)}
    assert not sorted(n for n in names if n.startswith(("pip", "easy_install")))
    for python in ("python", "/usr/bin/python3"):
        ran = _run(image, [python, "-m", "pip", "--version"])
        assert ran.returncode != 0, ran.stdout
        assert "No module named pip" in ran.stderr, ran.stderr


def test_runtime_dependencies_import(image: BuiltImage) -> None:
    ran = _run(image, ["python", "-c", f"import {', '.join(RUNTIME_MODULES)}"])
    assert ran.returncode == 0, ran.stderr


def test_top_level_help_lists_every_subcommand(image: BuiltImage) -> None:
    ran = _run(image, image.argv(["--help"]))
    assert ran.returncode == 0, ran.stderr
    listed = re.search(r"\{([^}]*)\}", ran.stdout)
    assert listed is not None, ran.stdout
    assert sorted(listed.group(1).split(",")) == _subcommands()


@pytest.mark.parametrize("subcommand", _subcommands())
def test_every_subcommand_starts(image: BuiltImage, subcommand: str) -> None:
    ran = _run(image, image.argv([subcommand, "--help"]))
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.startswith(f"usage: tradearena {subcommand}"), ran.stdout


def test_unchanged_inputs_are_a_cache_hit(image: BuiltImage) -> None:
    started = time.monotonic()
    again = subprocess.run(
        [str(BUILD_SCRIPT)], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert time.monotonic() - started < 5, again.stdout
    assert "image cached" in again.stdout and image.key in again.stdout
    assert ensure_image() == image


def test_an_unfinished_directory_is_not_an_image(image: BuiltImage, tmp_path: Path) -> None:
    """What an interrupted build leaves (a rootfs without its config) never loads."""
    partial = tmp_path / image.key
    (partial / "rootfs").mkdir(parents=True)
    with pytest.raises(ImageBuildError, match="not a built image"):
        load_image(partial)
    shutil.copy(image.rootfs.parent / "config.json", partial / "config.json")
    assert load_image(partial).user == image.user
