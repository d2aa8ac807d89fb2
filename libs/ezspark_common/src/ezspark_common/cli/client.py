"""HTTP client for the EzSpark gateway and the CLI's stored credentials (standard library only).

Credentials live in ``$XDG_CONFIG_HOME/ezspark/credentials.json`` (or
``~/.config/ezspark/credentials.json``), mode 0600: the gateway URL and a long-lived API
token, never a password.  ``EZSPARK_URL`` and ``EZSPARK_TOKEN`` override what is stored.

Every failure the CLI can meet is a :class:`ClientError` whose text is meant for the user:
the gateway unreachable, an HTTP error (with the gateway's ``detail`` and, for 422s, each
field and its message), or not being logged in.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

DEFAULT_URL = "http://127.0.0.1:8000"
TIMEOUT_S = 15.0
URL_ENV, TOKEN_ENV = "EZSPARK_URL", "EZSPARK_TOKEN"
USER_AGENT = "ezspark-cli/0.1"


class ClientError(Exception):
    """A failure to report to the user as is (one message, no traceback)."""


class NotLoggedInError(ClientError):
    """No token stored and none in the environment."""


class UnreachableError(ClientError):
    """The gateway could not be reached or did not answer."""


class ApiError(ClientError):
    """The gateway answered with an HTTP error; ``errors`` lists ``(field, message)``."""

    def __init__(self, status: int, detail: str, errors: list[tuple[str, str]]) -> None:
        self.status, self.detail, self.errors = status, detail, errors
        super().__init__(f"{detail} (HTTP {status})")


@dataclass(frozen=True)
class Credentials:
    """Where the gateway is and the API token to present to it."""

    url: str
    token: str
    token_id: int | None = None
    username: str | None = None


def config_dir() -> Path:
    """``$XDG_CONFIG_HOME/ezspark``, or ``~/.config/ezspark`` (relative XDG paths ignored)."""
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".config"
    return base / "ezspark"


def credentials_path() -> Path:
    """The credentials file."""
    return config_dir() / "credentials.json"


def normalise_url(url: str) -> str:
    """``url`` without trailing slash; ClientError unless it is an http(s) URL with a host."""
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ClientError(f"invalid gateway URL {url!r}: use http://host:port or https://host")
    return url


def load_stored() -> Credentials | None:
    """The stored credentials, or None when there are none."""
    path = credentials_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Credentials(
            url=str(data["url"]),
            token=str(data["token"]),
            token_id=int(data["token_id"]) if data.get("token_id") is not None else None,
            username=str(data["username"]) if data.get("username") is not None else None,
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ClientError(f"cannot read {path} ({exc}); run `ezspark login` again") from None


def save(creds: Credentials) -> Path:
    """Write the credentials atomically with mode 0600 (directory 0700); return the path."""
    path = credentials_path()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".credentials-", dir=path.parent)  # mode 0600
    except OSError as exc:
        raise ClientError(f"cannot save credentials in {path.parent}: {exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            os.fchmod(out.fileno(), 0o600)
            json.dump(asdict(creds), out, indent=1)
            out.write("\n")
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise ClientError(f"cannot save credentials in {path}: {exc}") from None
        raise
    return path


def forget() -> bool:
    """Delete the stored credentials; False if there were none."""
    path = credentials_path()
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise ClientError(f"cannot delete {path}: {exc}") from None
    return True


def gateway_url(explicit: str | None = None) -> str:
    """The URL to talk to: ``explicit``, else $EZSPARK_URL, else the stored one, else default."""
    if explicit:
        return normalise_url(explicit)
    if os.environ.get(URL_ENV):
        return normalise_url(os.environ[URL_ENV])
    stored = load_stored()
    return normalise_url(stored.url if stored else DEFAULT_URL)


def current_credentials() -> Credentials:
    """Stored credentials with the environment's overrides; NotLoggedInError if no token."""
    env_token = os.environ.get(TOKEN_ENV, "").strip()
    if env_token:
        return Credentials(url=gateway_url(), token=env_token)
    stored = load_stored()
    if stored is None:
        raise NotLoggedInError(
            "not logged in: run `ezspark login --url URL` (or set EZSPARK_URL and EZSPARK_TOKEN)"
        )
    url = gateway_url()
    if url != normalise_url(stored.url):
        # Never present one gateway's token to another.
        raise NotLoggedInError(
            f"logged in to {stored.url}, not to {url} ({URL_ENV}): run "
            f"`ezspark login --url {url}` or set {TOKEN_ENV}"
        )
    return Credentials(
        url=url, token=stored.token, token_id=stored.token_id, username=stored.username
    )


def path_part(value: str) -> str:
    """``value`` escaped as one URL path segment (an id can never climb to another route)."""
    return quote(value, safe="")


def _error_from(exc: urllib.error.HTTPError) -> ApiError:
    try:
        data = json.loads(exc.read() or b"{}")
    except (ValueError, OSError, http.client.HTTPException):
        data = {}
    if not isinstance(data, dict):
        data = {}
    detail = data.get("detail")
    if not isinstance(detail, str):
        detail = str(exc.reason or "error")
    errors = [
        (str(e.get("field", "?")), str(e.get("message", "invalid")))
        for e in data.get("errors") or []
        if isinstance(e, dict)
    ]
    return ApiError(exc.code, detail, errors)


class Gateway:
    """JSON over HTTP to one gateway, optionally with a bearer token."""

    def __init__(self, url: str, token: str | None = None, timeout: float = TIMEOUT_S) -> None:
        self.url = normalise_url(url)
        self.token = token
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        raw_json: bytes | None = None,
        query: dict[str, Any] | None = None,
        token: str | None = None,
    ) -> Any:
        """Send one request; the decoded JSON answer (None when empty), or ClientError."""
        url = self.url + path + (f"?{urlencode(query)}" if query else "")
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        bearer = token or self.token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        body = (
            raw_json
            if raw_json is not None
            else (None if json_body is None else json.dumps(json_body).encode())
        )
        if body is not None:
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(url, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw: bytes = resp.read()
        except urllib.error.HTTPError as exc:
            raise _error_from(exc) from None
        except urllib.error.URLError as exc:
            raise UnreachableError(
                f"cannot reach the gateway at {self.url}: {exc.reason}"
            ) from None
        except TimeoutError:
            raise UnreachableError(
                f"the gateway at {self.url} did not answer within {self.timeout:g} s"
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            raise UnreachableError(
                f"lost the connection to the gateway at {self.url}: {exc or type(exc).__name__}"
            ) from None
        if not raw.strip():
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise ClientError(
                f"unexpected answer from {url}: not JSON; is {self.url} an EzSpark gateway?"
            ) from None

    def get(self, path: str, **query: Any) -> Any:
        """GET ``path`` with query parameters."""
        return self.request("GET", path, query=query or None)

    def post(self, path: str, json_body: Any = None) -> Any:
        """POST a JSON body (or none)."""
        return self.request("POST", path, json_body=json_body)
