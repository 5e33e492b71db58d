# syntax=docker/dockerfile:1.7
# The govsync image: one image, one process per container, the subcommand chosen by the args
# (`ingest`, `sync --target portal|ndxp`). Runs as a numeric non-root user on a read-only root
# filesystem; only /tmp needs to be writable (an emptyDir in Kubernetes).
#
#   docker build -t govsync:0.1.0 .
#   docker run --rm --read-only --tmpfs /tmp govsync:0.1.0 --help
#
# Pin the base by digest in CI: --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest>

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

# ---- builder: resolve nothing, install exactly uv.lock into /app/.venv ----
FROM ${PYTHON_IMAGE} AS builder
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first, in their own layer: it changes only when the lock file does.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
# Then the project itself, installed as a wheel (not editable) so /src is not needed at run time.
COPY services ./services
COPY schemas ./schemas
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

# ---- runtime: the same Python, the virtual environment, nothing else ----
FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="govsync" \
      org.opencontainers.image.description="Bridges Vietnam's one-stop-shop and document systems to the National Public Service Portal and NDXP." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/govsync/govsync" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.14-slim-bookworm"
# A fixed numeric user and group, matching the chart's runAsUser/runAsGroup (10001).
RUN groupadd --system --gid 10001 govsync \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
       --shell /usr/sbin/nologin govsync
COPY --from=builder --chown=root:root /app/.venv /app/.venv
# Bytecode is compiled at build time; nothing is written at run time except under /tmp.
# Two malloc arenas: glibc's default (8 per core) keeps each thread's peak (libxml2 and OpenSSL
# checking a package) resident. A fixed mmap threshold: by default glibc raises it to the largest
# block freed, so a package's 10 MiB buffers then come from the heap and stay resident between
# packages. The ingest pod's memory figure in docs/security.md assumes both.
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MALLOC_ARENA_MAX=2 \
    MALLOC_MMAP_THRESHOLD_=1048576 \
    HOME=/tmp \
    TMPDIR=/tmp
WORKDIR /tmp
USER 10001:10001
EXPOSE 8081 8082 8083
# Kubernetes probes /healthz and /readyz; an image HEALTHCHECK would only duplicate them.
HEALTHCHECK NONE
ENTRYPOINT ["govsync"]
CMD ["--help"]
