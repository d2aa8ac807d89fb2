"""A user's own machine as an evaluator: trade the user's API token for a broker user.

``ezspark evaluator --gateway URL`` (or ``ezspark-evaluator`` with ``EZSPARK_GATEWAY`` and
``EZSPARK_TOKEN``) asks the gateway for a broker user of this machine's own
(``POST /api/evaluators``).  Its name becomes the evaluator id, and its permissions let it
read only its owner's task queues (and the volunteers' with ``--volunteer``) and publish
only results and announcements.  It neither declares nor subscribes to anything, and
the broker user is deleted again when the process stops (or the token is revoked).
"""

from __future__ import annotations

import os
from typing import Any

import structlog

from ezspark_common.cli.client import (
    TOKEN_ENV,
    ClientError,
    Credentials,
    Gateway,
    NotLoggedInError,
    load_stored,
    normalise_url,
    path_part,
)
from ezspark_evaluator.settings import EvaluatorSettings

log = structlog.get_logger("ezspark_evaluator")


def credentials(url: str) -> Credentials:
    """The token to present to ``url``: $EZSPARK_TOKEN, else the one stored by login there."""
    url = normalise_url(url)
    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return Credentials(url=url, token=token)
    stored = load_stored()
    if stored is None or normalise_url(stored.url) != url:
        raise NotLoggedInError(f"not logged in to {url}: run `ezspark login --url {url}`")
    return stored


def join(settings: EvaluatorSettings) -> EvaluatorSettings:
    """Settings for this machine's own broker user, issued by the gateway."""
    creds = credentials(settings.gateway)
    issued: Any = Gateway(creds.url, creds.token).post(
        "/api/evaluators", {"volunteer": settings.volunteer}
    )
    log.info(
        "evaluator_credential_issued",
        evaluator_id=issued["evaluator_id"],
        volunteer=issued["volunteer"],
    )
    return settings.model_copy(
        update={
            "broker_url": issued["broker_url"],
            "evaluator_id": issued["evaluator_id"],
            "broker_declares": False,
            "queue_prefix": "",
        }
    )


def leave(settings: EvaluatorSettings) -> None:
    """Delete this machine's broker user (best effort: revoking the token does it too)."""
    try:
        creds = credentials(settings.gateway)
        gateway = Gateway(creds.url, creds.token)
        gateway.request("DELETE", f"/api/evaluators/{path_part(settings.evaluator_id)}")
    except ClientError as exc:
        log.info("evaluator_credential_kept", error=str(exc))
