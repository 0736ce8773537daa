"""The Dockerfile, checked structurally (no container engine here): a multi-stage build
whose final stage is a pinned slim Python runtime, running as a numeric non-root user,
with `tradearena` as its entry point and no build tooling."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from tradearena.testing.paths import REPO

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [arg for kw, arg in self.instructions if kw == keyword]


def _instructions(text: str) -> list[tuple[str, str]]:
    logical: list[str] = []
    buffer = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not buffer and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer += line[:-1] + " "
            continue
        logical.append(buffer + line)
        buffer = ""
    assert not buffer, "dangling line continuation"
    out = []
    for line in logical:
        keyword, _, arg = line.partition(" ")
        out.append((keyword.upper(), arg.strip()))
    return out


def _parse() -> tuple[dict[str, str], list[Stage]]:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for keyword, arg in _instructions(DOCKERFILE.read_text()):
        if keyword == "FROM":
            parts = arg.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], parts[0])
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(base=base, name=name))
        elif not stages and keyword == "ARG":
            key, _, default = arg.partition("=")
            args[key] = default
        else:
            assert stages, f"{keyword} before the first FROM"
            stages[-1].instructions.append((keyword, arg))
    return args, stages


def test_multi_stage_build_ends_in_a_pinned_slim_python_311() -> None:
    _, stages = _parse()
    assert len(stages) >= 2, "a build stage and a runtime stage"
    final = stages[-1]
    repository, _, tag = final.base.partition(":")
    assert repository == "python"
    # Pinned by tag: a full patch version, slim variant, named Debian release.
    assert re.fullmatch(r"3\.11\.\d+-slim-[a-z]+", tag), final.base
    for stage in stages:
        assert ":" in stage.base and not stage.base.endswith(":latest"), stage.base
    # The wheels are built in an earlier stage and installed from them alone (offline) into
    # a virtual environment there, which the final stage copies whole.
    build = stages[0]
    build_runs = " ".join(build.all("RUN"))
    assert "pip wheel" in build_runs and "--no-index" in build_runs
    assert any(copy.startswith(f"--from={build.name} ") for copy in final.all("COPY"))


def test_final_stage_has_no_build_tools_and_no_remote_add() -> None:
    _, stages = _parse()
    final = stages[-1]
    runs = " ".join(final.all("RUN"))
    for tool in ("apt-get", "apk ", "gcc", "build-essential", "make ", "git "):
        assert tool not in runs, f"{tool!r} in the runtime stage"
    assert "pip uninstall -y pip setuptools wheel" in runs
    for stage in stages:
        for add in stage.all("ADD"):
            assert not re.search(r"https?://|git@", add), f"remote ADD: {add}"


def test_runs_as_numeric_non_root_user_with_tradearena_entrypoint() -> None:
    _, stages = _parse()
    final = stages[-1]
    users = final.all("USER")
    assert users, "the final stage sets USER"
    user, _, group = users[-1].partition(":")
    assert user.isdigit() and int(user) > 0, users[-1]
    assert group.isdigit() and int(group) > 0, users[-1]
    # The chart's runAsUser matches the image's user.
    values = (REPO / "charts" / "tradearena" / "values.yaml").read_text()
    assert f"runAsUser: {user}" in values
    (entrypoint,) = final.all("ENTRYPOINT")
    assert json.loads(entrypoint) == ["tradearena"]
    (cmd,) = final.all("CMD")
    assert isinstance(json.loads(cmd), list)
    # Read-only-root friendly: the only writable paths point at /tmp.
    env = " ".join(final.all("ENV"))
    assert "HOME=/tmp" in env and "TMPDIR=/tmp" in env and "PYTHONDONTWRITEBYTECODE=1" in env
    assert final.all("WORKDIR") == ["/tmp"]
    assert not final.all("HEALTHCHECK")


def test_build_context_is_limited_by_dockerignore() -> None:
    lines = [
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[0] == "*", "ignore everything, then allow what the image needs"
    allowed = {line[1:].rstrip("/") for line in lines if line.startswith("!")}
    assert allowed == {
        "pyproject.toml",
        "README.md",
        "tradearena",
        "lobby",
        "matchserver",
        "operator",
    }
    # Test support is never in the build context, so never in the image.
    assert "tradearena/testing/" in lines
    _, stages = _parse()
    copied = " ".join(stages[0].all("COPY"))
    for path in allowed:
        assert path in copied
