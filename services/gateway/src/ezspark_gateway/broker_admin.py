"""RabbitMQ's management HTTP API, for issuing users' evaluators their own broker users.

Only what the issuer needs: create a user with a password, grant its permissions on one
vhost, list users by name prefix, delete one.  RabbitMQ closes a deleted user's
connections itself.  The standard library's HTTP client is enough for these few calls.
The credential used here (an ``administrator`` management user) stays in the gateway.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from ezspark_common.wire.permissions import Permission
from ezspark_gateway.core.errors import UnavailableError

_TIMEOUT_S = 10.0


class BrokerAdminError(UnavailableError):
    """The management API refused or could not be reached (the client gets 503)."""


class BrokerAdmin:
    """A management API client for one RabbitMQ cluster and one vhost."""

    def __init__(self, base_url: str, user: str, password: str, vhost: str) -> None:
        self._base = base_url.rstrip("/") + "/api"
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self._auth = f"Basic {token}"
        self.vhost = vhost

    def create_user(self, name: str, password: str, permission: Permission) -> None:
        """Create (or reset) ``name`` with no tags and ``permission`` on the vhost."""
        self._call("PUT", f"/users/{_q(name)}", {"password": password, "tags": ""})
        self._call("PUT", f"/permissions/{_q(self.vhost)}/{_q(name)}", permission.as_dict())

    def users(self, prefix: str) -> list[str]:
        """Names of the broker users starting with ``prefix`` that hold permissions on this
        vhost.  Only this vhost's: another installation sharing the broker (its own vhost)
        issues users by the same naming rule, and its sweep must never delete ours."""
        found = self._call("GET", f"/vhosts/{_q(self.vhost)}/permissions") or []
        names = {str(p.get("user", "")) for p in found}
        return sorted(n for n in names if n.startswith(prefix))

    def delete_user(self, name: str) -> bool:
        """Delete ``name`` (RabbitMQ closes its connections); False if it did not exist."""
        try:
            self._call("DELETE", f"/users/{_q(name)}")
        except BrokerAdminError as exc:
            if "404" in str(exc):
                return False
            raise
        return True

    def connections_of(self, name: str) -> list[str]:
        """Names of the open connections of broker user ``name``."""
        found = self._call("GET", "/connections") or []
        return [c["name"] for c in found if c.get("user") == name]

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self._base + path, data=data, method=method)
        request.add_header("Authorization", self._auth)
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=_TIMEOUT_S) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise BrokerAdminError(f"{method} {path}: {exc.code} {exc.reason}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise BrokerAdminError(f"{method} {path}: management API unreachable: {exc}") from None
        return json.loads(raw) if raw else None


def _q(part: str) -> str:
    return urllib.parse.quote(part, safe="")
