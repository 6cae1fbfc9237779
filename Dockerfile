# syntax=docker/dockerfile:1.7
# One image for every service: `docker run IMAGE approval|scheduler|metrics`,
# `docker run IMAGE publisher --platform instagram` (or `--platform all`),
# `docker run IMAGE tools.emulator --host 0.0.0.0` (the social-platform emulator, for demos only).
# Python packages come from the committed uv.lock (`uv sync --frozen`); no dev dependencies.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG UV_VERSION=0.13.8

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /app
# Dependencies first (their layer survives source edits): only the lock and the project files.
COPY pyproject.toml uv.lock ./
COPY shared/pyproject.toml shared/
COPY services/approval/pyproject.toml services/approval/
COPY services/scheduler/pyproject.toml services/scheduler/
COPY services/publisher/pyproject.toml services/publisher/
COPY services/metrics/pyproject.toml services/metrics/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace
# Then the workspace packages themselves, installed (not editable) into the same environment.
COPY shared/ shared/
COPY services/ services/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

FROM ${PYTHON_IMAGE} AS runtime
# ffprobe (Debian's ffmpeg package): approval measures videos with it before approval
# (APPROVAL_MEDIA_PROBE__ENABLED, on by default). Before APP_UID, so changing that keeps this layer.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/*
ARG APP_UID=10001
RUN groupadd --system --gid ${APP_UID} app \
 && useradd --system --uid ${APP_UID} --gid app --home-dir /home/app --create-home --shell /usr/sbin/nologin app \
 && install -d -o app -g app -m 0700 /var/lib/socialpub
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    SOCIALPUB_HTTP__HOST=0.0.0.0 \
    SOCIALPUB_LOG__JSON_OUTPUT=true
WORKDIR /app
COPY --from=build --chown=root:root /app/.venv /app/.venv
# The emulator is a plain package of the repository (not a workspace member); run as `-m tools.emulator`.
COPY --chown=root:root tools/__init__.py tools/
COPY --chown=root:root tools/emulator/ tools/emulator/
USER ${APP_UID}:${APP_UID}
# 8001 approval, 8002 scheduler, 8003 publisher, 8004 metrics, 8090 emulator.
EXPOSE 8001 8002 8003 8004 8090
# The services handle SIGTERM themselves (drain HTTP, finish in-flight messages, commit, exit 0).
STOPSIGNAL SIGTERM
ENTRYPOINT ["python", "-m"]
CMD ["approval"]
