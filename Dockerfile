# syntax=docker/dockerfile:1
# One image for every TradeArena process: the `tradearena` console script picks the
# process from its subcommand (lobby, matchserver, operator, feed-relay,
# results-worker, migrate). See charts/README.md.
#
#   docker build -t tradearena:0.1.0 .
#   docker run --rm tradearena:0.1.0 modes

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# ---------------------------------------------------------------- build: a wheel
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY tradearena ./tradearena
COPY lobby ./lobby
COPY matchserver ./matchserver
COPY operator ./operator
RUN python -m pip wheel --wheel-dir /wheels ".[lobby,matchserver,operator]"

# ---------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TMPDIR=/tmp \
    HOME=/tmp
# Wheels only (no compiler in this stage); pip itself is removed afterwards so the
# final image carries nothing that installs software.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-index --find-links=/wheels "tradearena[lobby,matchserver,operator]" \
    && python -m pip uninstall -y pip setuptools wheel \
    && python -c "import lobby, matchserver, match_operator, tradearena"
# Numeric non-root user (runAsNonRoot can verify it); no home directory, no writes
# outside /tmp, which the chart mounts as an emptyDir under a read-only root.
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080 7000 9101 9102
ENTRYPOINT ["tradearena"]
CMD ["--help"]
