"""/api/evaluators: broker users for users' own machines, tied to the token that asked."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from ezspark_common.wire.permissions import Permission, user_evaluator_permission
from ezspark_gateway.core.evaluators import EvaluatorIssuer
from tests.unit.gateway.conftest import Gateway

PUBLIC = "amqp://broker.example.org:5672/%2F"


@dataclass
class FakeBrokerUsers:
    """The management API as a dict of broker users and their permissions."""

    created: dict[str, tuple[str, Permission]] = field(default_factory=dict)

    def create_user(self, name: str, password: str, permission: Permission) -> None:
        """Remember the user."""
        self.created[name] = (password, permission)

    def users(self, prefix: str) -> list[str]:
        """Names with ``prefix``."""
        return [n for n in self.created if n.startswith(prefix)]

    def delete_user(self, name: str) -> bool:
        """Forget the user; False if unknown."""
        return self.created.pop(name, None) is not None


def _issuer(gw: Gateway, limit: int = 3) -> FakeBrokerUsers:
    broker = FakeBrokerUsers()
    gw.app.state.ctx.evaluators = EvaluatorIssuer(broker, PUBLIC, limit)
    return broker


def _token(gw: Gateway, session: str) -> dict[str, object]:
    resp = gw.client.post("/api/auth/tokens", headers=gw.auth(session), json={"name": "laptop"})
    assert resp.status_code == 201, resp.text
    data: dict[str, object] = resp.json()
    return data


def test_a_machine_gets_a_broker_user_that_reads_only_its_owners_queues(gw: Gateway) -> None:
    """The answer holds the broker URL with a fresh password; the user is named after the
    account and the token, with the user-evaluator permissions (volunteer or not)."""
    broker = _issuer(gw)
    session = gw.signup("ada.l")
    token = _token(gw, session)
    for volunteer in (False, True):
        resp = gw.client.post(
            "/api/evaluators", headers=gw.auth(str(token["token"])), json={"volunteer": volunteer}
        )
        assert resp.status_code == 201, resp.text
        body = resp.json()
        prefix = "evv" if volunteer else "evu"
        assert body["evaluator_id"].startswith(f"{prefix}.ada~l.t{token['id']}x")
        url = urlsplit(body["broker_url"])
        assert (url.hostname, url.port, url.path) == ("broker.example.org", 5672, "/%2F")
        password, permission = broker.created[unquote(url.username or "")]
        assert unquote(url.password or "") == password
        assert permission == user_evaluator_permission("ada~l", volunteer)
    listed = gw.client.get("/api/evaluators", headers=gw.auth(session)).json()["items"]
    assert sorted(listed) == sorted(broker.created)


def test_revoking_the_token_deletes_its_machines_only(gw: Gateway) -> None:
    """Two tokens, a machine each: revoking one deletes its machine's broker user, the other
    stays; deleting another user's machine is 404."""
    broker = _issuer(gw)
    session = gw.signup("ada")
    first, second = _token(gw, session), _token(gw, session)
    ids = [
        gw.client.post("/api/evaluators", headers=gw.auth(str(t["token"]))).json()["evaluator_id"]
        for t in (first, second)
    ]
    assert (
        gw.client.delete(f"/api/auth/tokens/{first['id']}", headers=gw.auth(session)).status_code
        == 204
    )
    assert list(broker.created) == [ids[1]]
    other = gw.signup("bob")
    assert gw.client.delete(f"/api/evaluators/{ids[1]}", headers=gw.auth(other)).status_code == 404
    assert (
        gw.client.delete(f"/api/evaluators/{ids[1]}", headers=gw.auth(session)).status_code == 204
    )
    assert broker.created == {}


def test_limits_and_a_gateway_without_issuer(gw: Gateway) -> None:
    """Past the per-account limit: 429; no management API configured: 503; no token: 401."""
    _issuer(gw, limit=1)
    session = gw.signup("ada")
    assert gw.client.post("/api/evaluators", headers=gw.auth(session)).status_code == 201
    assert gw.client.post("/api/evaluators", headers=gw.auth(session)).status_code == 429
    assert gw.client.post("/api/evaluators").status_code == 401
    gw.app.state.ctx.evaluators = None
    assert gw.client.post("/api/evaluators", headers=gw.auth(session)).status_code == 503


def test_sweep_deletes_the_machines_of_tokens_no_longer_live() -> None:
    """A sweep keeps the broker users of live tokens and deletes the others, including a
    name that names no token; it asks about each token id once."""
    broker = FakeBrokerUsers()
    for name in ("evu.ada.t1xaa", "evv.ada.t2xbb", "evu.bob.t3xcc", "evu.bob.stray"):
        broker.create_user(name, "pw", user_evaluator_permission("ada", False))
    asked: list[set[int]] = []

    def live(ids: set[int]) -> set[int]:
        asked.append(ids)
        return {1, 3}

    issuer = EvaluatorIssuer(broker, PUBLIC, 4)
    assert issuer.sweep(live) == 2
    assert sorted(broker.created) == ["evu.ada.t1xaa", "evu.bob.t3xcc"]
    assert asked == [{1, 2, 3}]
    assert issuer.sweep(live) == 0
