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
# Your package registers its environments with gymnasium.register() when imported;
# EZSPARK_ENV_MODULES names the modules the evaluator imports at start-up.
ARG BASE_IMAGE=ezspark/evaluator:dev
FROM ${BASE_IMAGE}
ARG ENV_MODULES=my_gym_envs
USER root
COPY . /tmp/user-envs
RUN /opt/venv/bin/pip install --no-cache-dir /tmp/user-envs && rm -rf /tmp/user-envs
USER 10001:10001
ENV EZSPARK_ENV_MODULES=${ENV_MODULES}
