# syntax=docker/dockerfile:1
#
# EzSpark container images: one file, one build target per service.
#
#   docker build --target gateway   -t ezspark/gateway:dev   .
#   docker build --target evolver   -t ezspark/evolver:dev   .
#   docker build --target evaluator -t ezspark/evaluator:dev .
#
# (`docker compose build` does the same for all three.)
#
# Every image: python:3.11-slim base, dependencies built in a separate stage and
# copied in as one virtualenv (/opt/venv, owned by root, read-only for the service),
# runs as the unprivileged user `ezspark` (uid/gid 10001) under tini, and has a
# HEALTHCHECK that needs nothing beyond the Python standard library.
#
# Environments live in the evaluator image only: the evaluators build and step them, the
# evolver never does.  The evaluator image has Box2D (LunarLander & co., the library's
# `box2d` extra); the evolver and gateway images do not need it.
#
# Adding your own Gymnasium environment package to the evaluator image
# --------------------------------------------------------------------
# 1. From a package index or VCS (no Dockerfile edits): pass pip requirement
#    specifiers in the EXTRA_PIP_PACKAGES build argument, then tell the evaluator
#    which modules to import at start-up with EZSPARK_ENV_MODULES:
#
#      docker build --target evaluator \
#        --build-arg EXTRA_PIP_PACKAGES="my-gym-envs==1.2.0" \
#        -t ezspark/evaluator:custom .
#      docker run -e EZSPARK_ENV_MODULES=my_gym_envs ... ezspark/evaluator:custom
#
#    With compose: set EVALUATOR_EXTRA_PIP_PACKAGES and EZSPARK_ENV_MODULES in .env.
# 2. From local source code: build a derived image, see
#    deploy/docker/evaluator-custom-env.Dockerfile and docs/deploy.md.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------- build stages
FROM ${PYTHON_IMAGE} AS build-base
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# The shared library first: every service depends on it.
COPY libs/ezspark_common/ libs/ezspark_common/
RUN pip install "./libs/ezspark_common[broker]"

FROM build-base AS build-gateway
COPY services/gateway/ services/gateway/
RUN pip install ./services/gateway

FROM build-base AS build-evolver
COPY services/evolver/ services/evolver/
RUN pip install ./services/evolver

FROM build-base AS build-evaluator
# Box2D for the evaluator: the library's `box2d` extra (box2d + pygame).  box2d ships
# manylinux wheels for x86_64 only; on other platforms pip compiles it, which needs a C++
# compiler and SWIG.  They are installed only then, and only in this build stage: the
# runtime image gets the built virtualenv, never the toolchain.
RUN pip install --only-binary=box2d "./libs/ezspark_common[box2d,broker]" \
    || { apt-get update \
         && apt-get install -y --no-install-recommends g++ swig \
         && rm -rf /var/lib/apt/lists/* \
         && pip install "./libs/ezspark_common[box2d,broker]"; }
COPY services/evaluator/ services/evaluator/
RUN pip install ./services/evaluator
# Space-separated pip requirement specifiers for user environment packages
# (e.g. "my-gym-envs==1.2.0" or "git+https://example.org/me/envs.git@v1").
ARG EXTRA_PIP_PACKAGES=""
RUN if [ -n "$EXTRA_PIP_PACKAGES" ]; then pip install $EXTRA_PIP_PACKAGES; fi

# ---------------------------------------------------------------- runtime base
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 ezspark \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/ezspark \
       --create-home --shell /usr/sbin/nologin ezspark \
    && mkdir -p /data \
    && chown 10001:10001 /data
WORKDIR /home/ezspark
USER 10001:10001
ENTRYPOINT ["/usr/bin/tini", "--"]

# ---------------------------------------------------------------- gateway
FROM runtime AS gateway
COPY --from=build-gateway /opt/venv /opt/venv
# The example configs the training form offers as templates (web/presets.py).
COPY examples/ /opt/ezspark/examples/
# Listen on every interface inside the container; keep the SQLite file on /data.
ENV EZSPARK_HOST=0.0.0.0 \
    EZSPARK_DATABASE_URL=sqlite:////data/gateway.db \
    EZSPARK_EXAMPLES_DIR=/opt/ezspark/examples
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('EZSPARK_PORT', '8000'), timeout=4)"]
CMD ["ezspark-gateway"]

# ---------------------------------------------------------------- evolver
FROM runtime AS evolver
COPY --from=build-evolver /opt/venv /opt/venv
# Checkpoints live here: mount a persistent volume on /data.  An active evolver and a
# standby may share it; the one holding the lock on /data/.leader.lock is active.
ENV EZSPARK_DATA_DIR=/data
EXPOSE 9102
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/metrics' % os.environ.get('EZSPARK_METRICS_PORT', '9102'), timeout=4)"]
CMD ["ezspark-evolver"]

# ---------------------------------------------------------------- evaluator
FROM runtime AS evaluator
COPY --from=build-evaluator /opt/venv /opt/venv
EXPOSE 9101
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/metrics' % os.environ.get('EZSPARK_METRICS_PORT', '9101'), timeout=4)"]
CMD ["ezspark-evaluator"]
