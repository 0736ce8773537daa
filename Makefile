# Two entry points for humans and CI: `make up` and `make test`.
# Everything they need is installed by scripts/bootstrap.sh (idempotent).
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup up test lint typecheck unit bench clean kube-tools jaeger cluster kwok-cluster kwok-cluster-down iac-tools image

setup:
	@scripts/bootstrap.sh

up: setup
	$(VENV)/bin/tradearena up

# Every Python tree of the repository (the operator's package lives in operator/).
PY_TREES := tradearena lobby matchserver operator tests bench

# actionlint (pinned in scripts/install-iac-tools.sh, built once into the tools cache) checks
# the GitHub Actions workflows, and shellcheck their run: scripts.
TOOLS ?= $(or $(TRADEARENA_TOOLS),$(HOME)/.cache/tradearena/tools)
ACTIONLINT_VERSION := $(shell sed -n 's/^ACTIONLINT_VERSION=//p' scripts/install-iac-tools.sh)
ACTIONLINT := $(TOOLS)/actionlint-$(ACTIONLINT_VERSION)/bin/actionlint

lint: setup
	$(VENV)/bin/ruff check $(PY_TREES)
	$(VENV)/bin/ruff format --check $(PY_TREES)
	$(VENV)/bin/lint-imports
	@scripts/install-iac-tools.sh actionlint
	$(ACTIONLINT) -no-color

typecheck: setup
	$(VENV)/bin/mypy

# The pure tier only: no Redis, PostgreSQL, Kubernetes or browser (tests/unit/).
unit: setup
	$(PY) -m pytest -q tests/unit

# Kubernetes test control plane, built from the Go modules pinned in hack/kube and
# cached in ~/.cache/tradearena (slow once, instant afterwards).
kube-tools:
	@scripts/build-kube.sh

# The trace backend of the tracing tests (Jaeger v2, OTLP in, query API out), built from the
# Go module pinned in hack/jaeger and cached in ~/.cache/tradearena (about 4 minutes once).
jaeger:
	@scripts/build-jaeger.sh

# The project's container image, built from the Dockerfile without a container engine
# (mmdebstrap bases, buildah) and unpacked into ~/.cache/tradearena/image/<key> for the
# tests that run it (tradearena/testing/image.py). Slow once, instant while the inputs hold.
image:
	@scripts/build-image.sh

# The Kubernetes path on this machine (as root): the control plane, a node whose pods
# really run, the image, PostgreSQL and Redis as external endpoints, the chart with
# TLS. Prints the lobby URL and the kubeconfig; Ctrl-C removes everything.
cluster: setup kube-tools image
	@$(PY) -m tradearena.testing.kube_platform up

# A control plane with kwok nodes only (nothing runs; for scale experiments);
# prints the kubeconfig path.
kwok-cluster: setup kube-tools
	@$(PY) -m tradearena.testing.kube up

kwok-cluster-down: setup
	@$(PY) -m tradearena.testing.kube down

# Offline infrastructure-as-code checkers used by tests/integration/terraform (hclfmt, checkov)
# and by lint and tests/integration/workflows (actionlint), pinned and cached in ~/.cache/tradearena/tools (slow once, instant afterwards).
iac-tools:
	@scripts/install-iac-tools.sh

# The whole suite: lint, types, every test. CI runs exactly this.
test: lint typecheck kube-tools jaeger image iac-tools
	$(PY) -m pytest tests --durations=25

bench: setup
	$(PY) bench/engine_bench.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
