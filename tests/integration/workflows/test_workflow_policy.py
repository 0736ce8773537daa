"""What the delivery workflows promise, read from their YAML: third-party actions pinned
by commit, least-privilege permissions per job, OIDC (no static AWS keys), concurrency,
the README's test command, the image named by digest from the build on, and a deploy
that is atomic, rolls back the workloads and says the database is not rolled back."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tradearena.testing.paths import REPO

WORKFLOWS = REPO / ".github" / "workflows"
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def _load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    # YAML 1.1 reads the key `on` as the boolean true.
    if True in doc:
        doc["on"] = doc.pop(True)
    return doc


def _all() -> dict[str, dict[str, Any]]:
    return {p.name: _load(p.name) for p in sorted(WORKFLOWS.glob("*.yml"))}


def _steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for job in doc["jobs"].values() for s in job.get("steps", [])]


def _scripts(doc: dict[str, Any]) -> str:
    return "\n".join(s.get("run", "") for s in _steps(doc))


def test_every_action_is_pinned_by_commit() -> None:
    seen = 0
    for name, doc in _all().items():
        for step in _steps(doc):
            uses = step.get("uses")
            if uses is None:
                continue
            seen += 1
            assert SHA_PIN.match(uses), f"{name}: {uses} is not pinned to a commit"
        for job_name, job in doc["jobs"].items():
            if "uses" in job:  # a reusable workflow of this repository
                assert job["uses"].startswith("./.github/workflows/"), (name, job_name)
    assert seen >= 15


def test_permissions_are_read_only_by_default_and_granted_per_job() -> None:
    for name, doc in _all().items():
        assert doc["permissions"] in ({"contents": "read"}, {}), name
        for job_name, job in doc["jobs"].items():
            if name == "test.yml":
                continue  # one job under the read-only default
            assert "permissions" in job, f"{name}/{job_name} names no permissions"
            for scope, level in job["permissions"].items():
                assert level in ("read", "write"), (name, job_name, scope)
                if level == "write":
                    assert scope in ("packages", "id-token"), (name, job_name, scope)
    # Only deployments ask for an OIDC token.
    for name, doc in _all().items():
        for job_name, job in doc["jobs"].items():
            if job.get("permissions", {}).get("id-token") == "write":
                assert (name, job_name) in {("deploy.yml", "deploy"), ("release.yml", "staging")}


def test_every_workflow_has_a_concurrency_group() -> None:
    for name, doc in _all().items():
        assert doc["concurrency"]["group"], name
    # A deployment is never cancelled half-way.
    assert _load("deploy.yml")["concurrency"]["cancel-in-progress"] is False


def test_ci_runs_the_readme_test_command_with_the_cached_tools() -> None:
    doc = _load("test.yml")
    assert set(doc["on"]) == {"push", "pull_request"}
    (job,) = doc["jobs"].values()
    assert job["runs-on"].startswith("ubuntu-")
    assert job["container"]["image"] == "debian:bookworm"  # the README's fresh Debian
    assert "make test" in (REPO / ".ci" / "run").read_text()
    assert "bash .ci/run" in _scripts(doc)
    (cache,) = [s for s in _steps(doc) if s.get("uses", "").startswith("actions/cache@")]
    assert "~/.cache/tradearena" in cache["with"]["path"]
    key = cache["with"]["key"]
    for pinned in (
        "hack/kube/go.mod",
        "hack/kube/tools/go.mod",
        "hack/jaeger/go.mod",
        "scripts/install-iac-tools.sh",
    ):
        assert pinned in key, pinned
        assert (REPO / pinned).is_file(), pinned


def test_the_image_is_multi_platform_with_an_sbom_and_a_recorded_digest() -> None:
    doc = _load("image.yml")
    (build,) = [s for s in _steps(doc) if s.get("id") == "build"]
    assert build["uses"].startswith("docker/build-push-action@")
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64"
    assert build["with"]["file"] == "Dockerfile" and (REPO / "Dockerfile").is_file()
    assert build["with"]["sbom"] is True and build["with"]["push"] is True
    job = doc["jobs"]["build"]
    assert job["outputs"]["digest"] == "${{ steps.build.outputs.digest }}"
    assert doc["on"]["workflow_call"]["outputs"]["digest"]["value"] == (
        "${{ jobs.build.outputs.digest }}"
    )
    (sbom,) = [s for s in _steps(doc) if s.get("uses", "").startswith("anchore/sbom-action@")]
    assert sbom["with"]["image"].endswith("@${{ steps.build.outputs.digest }}")
    assert "ghcr.io/" in _scripts(doc)


def test_after_the_build_the_image_is_named_by_digest_only() -> None:
    release = _load("release.yml")
    assert release["jobs"]["chart"]["with"]["digest"] == "${{ needs.image.outputs.digest }}"
    assert release["jobs"]["staging"]["with"]["digest"] == "${{ needs.image.outputs.digest }}"
    chart = _scripts(_load("chart.yml"))
    assert 's|^(  tag: ).*|\\1\\"\\"|' in chart  # the tag is emptied
    assert 'digest: ).*|\\1\\"$DIGEST\\"|' in chart
    deploy = _scripts(_load("deploy.yml"))
    assert '--set-string image.digest="$DIGEST"' in deploy
    assert "--set-string image.tag= " in deploy
    for name in ("chart.yml", "deploy.yml", "release.yml"):
        assert ":latest" not in (WORKFLOWS / name).read_text(), name


def test_the_chart_is_linted_packaged_and_pushed_to_an_oci_registry() -> None:
    script = _scripts(_load("chart.yml"))
    lint = script.index("helm lint charts/tradearena")
    package = script.index("helm package charts/tradearena")
    push = script.index('helm push "dist/tradearena-$VERSION.tgz"')
    assert lint < package < push
    assert '--version "$VERSION"' in script
    assert 'registry="oci://ghcr.io/' in script


def test_deploy_is_atomic_into_protected_environments_with_a_rollback() -> None:
    doc = _load("deploy.yml")
    options = doc["on"]["workflow_dispatch"]["inputs"]["environment"]["options"]
    assert options == ["staging", "production"]
    job = doc["jobs"]["deploy"]
    assert job["environment"]["name"] == "${{ inputs.environment }}"
    steps = {s.get("name", s.get("uses", "")): s for s in job["steps"]}
    upgrade = steps["helm upgrade --install"]["run"]
    for flag in ("--atomic", "--wait", '--timeout "$TIMEOUT"'):
        assert flag in upgrade, flag
    rollback = steps["Roll back the workloads"]
    assert rollback["if"].startswith("failure()")
    assert "helm rollback" in rollback["run"]
    assert "database was NOT rolled back" in rollback["run"]
    assert "-migrate" in rollback["run"]
    (aws,) = [s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", "")]
    assert aws["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    text = (WORKFLOWS / "deploy.yml").read_text()
    assert "aws-access-key-id" not in text and "AWS_SECRET_ACCESS_KEY" not in text


@pytest.mark.parametrize("name", ["chart.yml", "deploy.yml"])
def test_helm_is_the_version_the_tests_use(name: str) -> None:
    tools = (REPO / "hack" / "kube" / "tools" / "go.mod").read_text()
    match = re.search(r"helm\.sh/helm/v3 (v\S+)", tools)
    assert match
    assert _load(name)["env"]["HELM_VERSION"] == match.group(1)


def test_the_makefile_lint_target_runs_actionlint() -> None:
    makefile = (REPO / "Makefile").read_text()
    lint = makefile.split("\nlint: ", 1)[1].split("\n\n", 1)[0]
    assert "install-iac-tools.sh actionlint" in lint
    assert "$(ACTIONLINT)" in lint


def test_operations_guide_covers_every_workflow_and_is_linked() -> None:
    guide = (REPO / "docs" / "operations.md").read_text()
    headings = set(re.findall(r"^##+ (.+)$", guide, re.MULTILINE))
    assert {
        "Releasing",
        "Rolling back",
        "Restoring PostgreSQL to a point in time",
        "Token-signing key (Ed25519, JWKS)",
        "Redis AUTH token",
        "Draining a node with live matches",
        "Redis Cluster and failover",
        "Upgrades under live matches",
    } <= headings
    for path in WORKFLOWS.glob("*.yml"):
        assert f"`{path.name}`" in guide, path.name
    assert "database is never rolled back" in guide.replace("**", "")
    assert "operations.md" in (REPO / "README.md").read_text()
