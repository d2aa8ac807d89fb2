# syntax=docker/dockerfile:1
#
# Example: an evaluator image that also contains your own Gymnasium environments,
# installed from local source code.  Build it from the directory that holds your
# package (the build context is YOUR project, not the EzSpark repository):
#
#   docker build --target evaluator -t ezspark/evaluator:dev /path/to/ezspark   # once
#   docker build -f /path/to/ezspark/deploy/docker/evaluator-custom-env.Dockerfile \
#     --build-arg ENV_MODULES=my_gym_envs -t ezspark/evaluator:my-envs .
#
# Only the evaluator image needs your package: the evaluators build and step the
# environments, the evolver never imports them and the gateway only learns their ids from
# the evaluators' announcements.  Run the stock evolver and gateway images unchanged.
#
# Your package registers its environments with gymnasium.register() when imported;
# EZSPARK_ENV_MODULES names the modules the evaluator imports at start-up.  Optionally
# restrict what these evaluators serve with EZSPARK_ENVS (comma-separated ids, set at run
# time; empty = every environment they can run).
#
# The base image already has Box2D.  If your package compiles native code, install a
# compiler in a builder stage and copy the result, to keep the image slim.
ARG BASE_IMAGE=ezspark/evaluator:dev
FROM ${BASE_IMAGE}
ARG ENV_MODULES=my_gym_envs
USER root
COPY . /tmp/user-envs
RUN /opt/venv/bin/pip install --no-cache-dir /tmp/user-envs && rm -rf /tmp/user-envs
USER 10001:10001
ENV EZSPARK_ENV_MODULES=${ENV_MODULES}
