# syntax=docker/dockerfile:1
# One image for every TradeArena process: the `tradearena` console script picks the
# process from its subcommand (lobby, matchserver, operator, feed-relay,
# results-worker, migrate). See charts/README.md.
#
#   docker build -t tradearena:0.1.0 .
#   docker run --rm tradearena:0.1.0 modes
#
# scripts/build-image.sh builds this same file without a container engine, on Debian
# bookworm bases of its own (BUILD_IMAGE, RUNTIME_IMAGE; see charts/README.md).
#
# The application lives in a virtual environment made in the build stage and copied
# whole into the runtime stage. Its bin/python is a symlink to the interpreter that made
# it, so the two bases must have the same Python at the same path (/usr/local/bin/python3
# in python:*-slim, /usr/bin/python3 in Debian's python3): pass both or neither.

ARG BUILD_IMAGE=python:3.11.14-slim-bookworm
ARG RUNTIME_IMAGE=python:3.11.14-slim-bookworm

# ---------------------------------------------------------------- build: wheels, venv
FROM ${BUILD_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
# The building machine's package-index settings, when it has any (pip ignores empty
# ones); a CA bundle for the index comes as the build secret pip-ca with PIP_CERT naming it.
ARG PIP_INDEX_URL=
ARG PIP_EXTRA_INDEX_URL=
ARG PIP_TRUSTED_HOST=
ARG PIP_CERT=
WORKDIR /src
COPY pyproject.toml README.md ./
COPY tradearena ./tradearena
COPY lobby ./lobby
COPY matchserver ./matchserver
COPY operator ./operator
# Wheels first (the project's and every dependency's; no compiler in either base, so a
# dependency without a wheel fails here), then an offline install into the venv, whose
# pip/setuptools/wheel are removed afterwards.
RUN --mount=type=secret,id=pip-ca \
    python3 -m venv /opt/tradearena \
    && /opt/tradearena/bin/python -m pip wheel --wheel-dir /wheels ".[lobby,matchserver,operator]" \
    && /opt/tradearena/bin/python -m pip install --no-index --find-links=/wheels \
        "tradearena[lobby,matchserver,operator]" \
    && /opt/tradearena/bin/python -m pip uninstall -y pip setuptools wheel \
    && /opt/tradearena/bin/python -c "import lobby, matchserver, match_operator, tradearena"

# ---------------------------------------------------------------- runtime
FROM ${RUNTIME_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TMPDIR=/tmp \
    HOME=/tmp \
    PATH=/opt/tradearena/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# No compiler, no apt-get here; a base that ships pip (python:*-slim does) loses it, so
# the final image carries nothing that installs software.
RUN if python3 -m pip --version >/dev/null 2>&1; then \
        python3 -m pip uninstall -y pip setuptools wheel; \
    fi
COPY --from=build /opt/tradearena /opt/tradearena
# The user has a name too: getpass.getuser() (kopf's peering identity, among others)
# looks the uid up in /etc/passwd when USER is unset, as under Kubernetes.
RUN python -c "import lobby, matchserver, match_operator, tradearena" \
    && ! python -m pip --version >/dev/null 2>&1 \
    && echo "tradearena:x:10001:10001:TradeArena:/tmp:/usr/sbin/nologin" >> /etc/passwd \
    && echo "tradearena:x:10001:" >> /etc/group
# Numeric non-root user (runAsNonRoot can verify it); no home directory, no writes
# outside /tmp, which the chart mounts as an emptyDir under a read-only root.
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080 7000 9101 9102
ENTRYPOINT ["tradearena"]
CMD ["--help"]
