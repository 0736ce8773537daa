"""Fixtures for the offline Terraform checks: parsed HCL, pinned tool binaries, paths.

Nothing here talks to AWS or to the Terraform registry. The tools (hclfmt, checkov) are
installed by scripts/install-iac-tools.sh (`make iac-tools`, a dependency of `make test`);
when one is missing the tests fail with that instruction instead of skipping.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hcl2
import pytest

from tradearena.testing.paths import REPO

TERRAFORM = REPO / "terraform"
IRSA_MODULE = TERRAFORM / "modules" / "irsa-role"
EXAMPLE = TERRAFORM / "examples" / "complete"
INSTALLER = REPO / "scripts" / "install-iac-tools.sh"
VALUES_SCRIPT = REPO / "scripts" / "tf-outputs-to-values.py"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

_OPTIONS = hcl2.SerializationOptions(
    strip_string_quotes=True, explicit_blocks=False, with_comments=False
)
_REF = re.compile(r"^\$\{(var|local)\.([A-Za-z0-9_.]+)\}$")


def pinned_version(tool: str) -> str:
    """The version of a tool pinned in scripts/install-iac-tools.sh (single source of truth)."""
    match = re.search(rf"^{tool}_VERSION=(\S+)$", INSTALLER.read_text(), re.MULTILINE)
    assert match, f"{tool}_VERSION not found in {INSTALLER}"
    return match.group(1)


def tools_dir() -> Path:
    return Path(os.environ.get("TRADEARENA_TOOLS", Path.home() / ".cache/tradearena/tools"))


def tool_binary(relative: str) -> Path:
    path = tools_dir() / relative
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"{path} is missing: run scripts/install-iac-tools.sh (make iac-tools) first",
            pytrace=False,
        )
    return path


@dataclass
class Module:
    """The blocks of one Terraform module directory, merged over its .tf files."""

    path: Path
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    data: dict[str, dict[str, Any]] = field(default_factory=dict)
    modules: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    terraform: list[Any] = field(default_factory=list)
    providers: list[Any] = field(default_factory=list)

    def resolve(self, value: Any, depth: int = 0) -> Any:
        """Follow a whole-value `${var.x.y}` / `${local.x.y}` reference to its default/value.

        Anything else (literals, other expressions) is returned unchanged, so a test can
        compare the effective default of an attribute with the property it must have.
        """
        assert depth < 20, f"reference loop at {value!r}"
        if not isinstance(value, str):
            return value
        match = _REF.match(value)
        if not match:
            return value
        kind, dotted = match.groups()
        head, *rest = dotted.split(".")
        if kind == "var":
            assert head in self.variables, f"undeclared variable {head}"
            current: Any = self.variables[head].get("default")
        else:
            assert head in self.locals, f"undeclared local {head}"
            current = self.locals[head]
        current = self.resolve(current, depth + 1)
        for part in rest:
            assert isinstance(current, dict), f"cannot read {part} of {current!r} in {value}"
            current = self.resolve(current[part], depth + 1)
        return current

    def resource(self, rtype: str, name: str) -> dict[str, Any]:
        assert name in self.resources.get(rtype, {}), f"resource {rtype}.{name} is missing"
        body: dict[str, Any] = self.resources[rtype][name]
        return body


def _merge_named(target: dict[str, Any], blocks: list[dict[str, Any]]) -> None:
    for block in blocks:
        for name, body in block.items():
            assert name not in target, f"duplicate block {name}"
            target[name] = body


def load_module(path: Path) -> Module:
    module = Module(path=path)
    files = sorted(path.glob("*.tf"))
    assert files, f"no .tf files in {path}"
    for tf in files:
        with tf.open() as handle:
            doc = hcl2.load(handle, serialization_options=_OPTIONS)
        for block in doc.get("resource", []):
            for rtype, named in block.items():
                _merge_named(module.resources.setdefault(rtype, {}), [named])
        for block in doc.get("data", []):
            for dtype, named in block.items():
                _merge_named(module.data.setdefault(dtype, {}), [named])
        _merge_named(module.modules, doc.get("module", []))
        _merge_named(module.variables, doc.get("variable", []))
        _merge_named(module.outputs, doc.get("output", []))
        _merge_named(module.locals, doc.get("locals", []))
        module.terraform.extend(doc.get("terraform", []))
        module.providers.extend(doc.get("provider", []))
    return module


@pytest.fixture(scope="session")
def root() -> Module:
    return load_module(TERRAFORM)


@pytest.fixture(scope="session")
def irsa_module() -> Module:
    return load_module(IRSA_MODULE)


@pytest.fixture(scope="session")
def example() -> Module:
    return load_module(EXAMPLE)


@pytest.fixture(scope="session")
def all_modules(root: Module, irsa_module: Module, example: Module) -> list[Module]:
    return [root, irsa_module, example]


@pytest.fixture(scope="session")
def hclfmt() -> Path:
    return tool_binary(f"hclfmt-{pinned_version('HCL')}/bin/hclfmt")


@pytest.fixture(scope="session")
def checkov() -> Path:
    return tool_binary(f"checkov-{pinned_version('CHECKOV')}/bin/checkov")
