#!/bin/sh
# Write the EzSpark broker users (one per service, least privilege:
# libs/ezspark_common/src/ezspark_common/wire/permissions.py) with the passwords from the
# environment into the definitions RabbitMQ imports at boot (20-ezspark.conf), then run
# the arguments, if any.  Compose runs it as the rabbitmq entrypoint (arguments: the
# image's own start), the dev Kubernetes base as an initContainer (no arguments).  Nothing
# secret is committed: the template has only placeholders, and a changed password
# applies at the next start.
set -eu
template=/etc/ezspark/definitions.template.json
out=/var/lib/rabbitmq/ezspark-definitions.json
umask 077
sed \
  -e "s/@RABBITMQ_USER@/${RABBITMQ_USER:?}/g" \
  -e "s/@RABBITMQ_PASSWORD@/${RABBITMQ_PASSWORD:?}/g" \
  -e "s/@EZSPARK_ISSUER_PASSWORD@/${EZSPARK_ISSUER_PASSWORD:?}/g" \
  -e "s/@EZSPARK_EVOLVER_BROKER_PASSWORD@/${EZSPARK_EVOLVER_BROKER_PASSWORD:?}/g" \
  -e "s/@EZSPARK_GATEWAY_BROKER_PASSWORD@/${EZSPARK_GATEWAY_BROKER_PASSWORD:?}/g" \
  -e "s/@EZSPARK_EVALUATOR_BROKER_PASSWORD@/${EZSPARK_EVALUATOR_BROKER_PASSWORD:?}/g" \
  "$template" > "$out"
chown rabbitmq:rabbitmq "$out" 2>/dev/null || true
if [ "$#" -gt 0 ]; then
  exec "$@"
fi
