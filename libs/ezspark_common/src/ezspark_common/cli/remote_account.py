"""``ezspark signup``, ``ezspark login`` and ``ezspark logout``.

``login`` trades a password for a long-lived API token (named after this host) and stores
it with the gateway URL (see ``ezspark_common.cli.client``); the other commands use it.
``signup`` creates the account (as the web page's sign-up does), then logs in the same way.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys

import click

from ezspark_common.cli.client import (
    TOKEN_ENV,
    ApiError,
    ClientError,
    Credentials,
    Gateway,
    credentials_path,
    forget,
    gateway_url,
    load_stored,
    save,
)
from ezspark_common.cli.remote_common import _dig, _fail, handled


def token_name() -> str:
    """The name of the API token ``login`` creates: where it is used from."""
    return f"ezspark-cli@{socket.gethostname() or 'unknown-host'}"[:100]


def _read_password(from_stdin: bool, *, confirm: bool = False) -> str:
    if not from_stdin:
        return str(click.prompt("Password", hide_input=True, confirmation_prompt=confirm))
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        _fail("--password-stdin: no password on standard input")
    return password


def _revoke_quietly(gw: Gateway, creds: Credentials | None) -> None:
    """Best effort: revoke a token we are about to forget (it may be gone already)."""
    if creds is None or creds.token_id is None:
        return
    with contextlib.suppress(ClientError):
        gw.request("DELETE", f"/api/auth/tokens/{creds.token_id}", token=creds.token)


# The options signup and login share.
_url = click.option(
    "--url",
    help="Gateway URL, e.g. https://ezspark.example.org "
    "(default: $EZSPARK_URL, the last one used, or http://127.0.0.1:8000).",
)
_username = click.option("--username", "-u", help="Account name (prompted if missing).")
_password_stdin = click.option(
    "--password-stdin", is_flag=True, help="Read the password from standard input."
)


@click.command()
@_url
@_username
@_password_stdin
@handled
def signup(url: str | None, username: str | None, password_stdin: bool) -> None:
    """Create an account on the gateway, then log in as `ezspark login` does."""
    gw, username, password = _ask(url, username, password_stdin, confirm=True)
    gw.post("/api/auth/signup", {"username": username, "password": password})
    # The gateway answers a taken name as it answers a free one (names stay private), so
    # only the login tells whether the account is ours.
    _log_in(
        gw,
        username,
        password,
        failed=f"signed up at {gw.url}, but could not log in as {username!r}: the name may "
        "belong to another account (choose another), or run `ezspark login` if it is yours",
    )


@click.command()
@_url
@_username
@_password_stdin
@handled
def login(url: str | None, username: str | None, password_stdin: bool) -> None:
    """Log in and store an API token (never the password) for the other commands."""
    gw, username, password = _ask(url, username, password_stdin)
    _log_in(gw, username, password, failed=f"login to {gw.url} failed")


def _ask(
    url: str | None, username: str | None, password_stdin: bool, *, confirm: bool = False
) -> tuple[Gateway, str, str]:
    """The gateway, and the username and password (prompted for when not given)."""
    gw = Gateway(gateway_url(url))
    username = username or str(click.prompt("Username"))
    return gw, username, _read_password(password_stdin, confirm=confirm)


def _log_in(gw: Gateway, username: str, password: str, *, failed: str) -> None:
    """Trade the password for an API token and store it; ``failed`` heads a refusal."""
    try:
        session = gw.post("/api/auth/login", {"username": username, "password": password})
    except ApiError as exc:
        if exc.status == 401:
            _fail(f"{failed}: {exc.detail} (no account yet? `ezspark signup --url {gw.url}`)")
        if exc.status in (422, 429):
            _fail(f"{failed}: {exc.detail}")
        raise
    session_token = str(_dig(session, "token", "token"))
    issued = gw.request(
        "POST", "/api/auth/tokens", json_body={"name": token_name()}, token=session_token
    )
    creds = Credentials(
        url=gw.url,
        token=str(_dig(issued, "token")),
        token_id=int(_dig(issued, "id")),
        username=username,
    )
    with contextlib.suppress(ClientError):  # the short-lived session has done its job
        gw.request("POST", "/api/auth/logout", token=session_token)
    try:
        previous = load_stored()
    except ClientError:
        previous = None  # unreadable: overwritten below
    path = save(creds)
    if previous is not None and previous.url == gw.url:
        _revoke_quietly(gw, previous)
    click.echo(f"logged in to {gw.url} as {username}; API token saved in {path}")


@click.command()
@handled
def logout() -> None:
    """Revoke the stored API token and delete it."""
    stored = load_stored()
    if stored is None:
        click.echo(f"not logged in (no {credentials_path()})")
    else:
        try:
            if stored.token_id is not None:
                Gateway(stored.url, stored.token).request(
                    "DELETE", f"/api/auth/tokens/{stored.token_id}"
                )
        except ClientError as exc:
            if not (isinstance(exc, ApiError) and exc.status in (401, 404)):
                click.echo(
                    f"warning: could not revoke the token on the gateway ({exc}); "
                    "it is only deleted here",
                    err=True,
                )
        forget()
        click.echo(f"logged out of {stored.url}")
    if os.environ.get(TOKEN_ENV):
        click.echo(f"note: {TOKEN_ENV} is still set and keeps authenticating", err=True)
