"""Who may call the app: bearer tokens, roles, the token cache, and audited feedback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from regrow import Workspace
from regrow.catalog import Catalog
from regrow.errors import AuthError, PermissionDenied
from regrow.serve.guard import Guard

Body = Callable[..., dict[str, Any]]


def tokens(home: Path, **roles: str) -> dict[str, str]:
    """A token per identity name -> role, created by the workspace's admin."""
    found = {}
    with Workspace.open(home) as ws:
        for name, role in roles.items():
            ws.add_identity(name, role)
            found[name] = ws.create_token(name)[1]
    return found


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def actions(home: Path) -> list[tuple[str, str, dict[str, Any]]]:
    with Workspace.open(home) as ws:
        return [(e.action, e.actor, e.payload) for e in ws.catalog.audit_events(limit=20)]


def test_with_token_inference_every_model_endpoint_needs_a_viewer_token(
    serve_home: Path, serve_client: Callable[..., TestClient], infer_body: Body
) -> None:
    secret = tokens(serve_home, viv="viewer")["viv"]
    client = serve_client(serve_home, inference="token")
    for method, path in [
        ("GET", "/v2/models/shop"),
        ("GET", "/v2/models/shop/versions/v1/ready"),
        ("POST", "/v2/models/shop/infer"),
    ]:
        body = infer_body(1) if method == "POST" else None
        anonymous = client.request(method, path, json=body)
        assert anonymous.status_code == 401, path
        assert anonymous.headers["www-authenticate"] == "Bearer"
        assert "needs an API token" in anonymous.json()["error"]
        allowed = client.request(method, path, json=body, headers=bearer(secret))
        assert allowed.status_code == 200, path
    for path in ("/v2/health/live", "/v2/health/ready", "/v2", "/metrics"):
        assert client.get(path).status_code == 200, path


def test_a_bad_token_is_a_401_and_audited(
    serve_home: Path, serve_client: Callable[..., TestClient], infer_body: Body
) -> None:
    client = serve_client(serve_home, inference="token")
    fake = "rgw_0123456789ab_" + "x" * 43
    response = client.post("/v2/models/shop/infer", json=infer_body(1), headers=bearer(fake))
    assert response.status_code == 401
    assert "0123456789ab" in response.json()["error"]
    assert "x" * 43 not in response.json()["error"]
    failed = [a for a in actions(serve_home) if a[0] == "auth.failed"]
    assert failed
    assert "x" * 43 not in str(failed)
    basic = client.post(
        "/v2/models/shop/infer", json=infer_body(1), headers={"Authorization": "Basic dXNlcg=="}
    )
    assert basic.status_code == 401


def test_open_inference_needs_no_token(
    serve_home: Path, serve_client: Callable[..., TestClient], infer_body: Body
) -> None:
    client = serve_client(serve_home)
    assert client.post("/v2/models/shop/infer", json=infer_body(1)).status_code == 200
    assert "security" not in str(
        client.get("/openapi.json").json()["paths"]["/v2/models/{model_name}/infer"]
    )


def test_feedback_needs_an_operator_and_is_stored_and_audited(
    serve_home: Path, serve_client: Callable[..., TestClient], infer_body: Body
) -> None:
    secrets = tokens(serve_home, viv="viewer", otto="operator")
    client = serve_client(serve_home)
    served = client.post("/v2/models/shop/infer", json=infer_body(2, request_id="fb-1")).json()
    assert served["id"] == "fb-1"
    labels = {"model_name": "shop", "labels": [{"id": "fb-1", "row": 1, "label": 1},
                                               {"id": "fb-1", "label": 0}]}  # fmt: skip
    assert client.post("/regrow/v1/feedback", json=labels).status_code == 401
    denied = client.post("/regrow/v1/feedback", json=labels, headers=bearer(secrets["viv"]))
    assert denied.status_code == 403
    assert "needs the operator role" in denied.json()["error"]
    assert ("auth.denied", "viv") in [(a, who) for a, who, _ in actions(serve_home)]
    ok = client.post("/regrow/v1/feedback", json=labels, headers=bearer(secrets["otto"]))
    assert (ok.status_code, ok.json()) == (200, {"received": 2})
    unnamed = {"labels": labels["labels"]}  # the hint's example names the model served
    hint = client.post("/regrow/v1/feedback", json=unnamed, headers=bearer(secrets["otto"]))
    assert hint.status_code == 400
    assert '{"model_name": "shop"' in hint.json()["error"]
    with Workspace.open(serve_home) as ws:
        assert ws.catalog.predictions.labels("shop", ["fb-1"]) == {("fb-1", 0): 0, ("fb-1", 1): 1}
    added = [(who, payload) for a, who, payload in actions(serve_home) if a == "feedback.add"]
    assert len(added) == 1
    assert added[0][0] == "otto"
    later = {"model_name": "shop", "labels": [{"id": "fb-1", "row": 1.0, "label": 0}]}
    client.post("/regrow/v1/feedback", json=later, headers=bearer(secrets["otto"]))
    with Workspace.open(serve_home) as ws:
        assert ws.catalog.predictions.labels("shop", ["fb-1"])[("fb-1", 1)] == 0  # replaced
    bad = {
        "model_name": "shop",
        "labels": [{"id": "fb-1", "label": 1}, {"id": "fb-2", "row": 3, "label": "yes"}],
    }
    refused = client.post("/regrow/v1/feedback", json=bad, headers=bearer(secrets["otto"]))
    assert refused.status_code == 400
    assert "request 'fb-2' row 3: 'yes'" in refused.json()["error"]
    with Workspace.open(serve_home) as ws:
        assert ws.catalog.predictions.labels("shop", ["fb-1"])[("fb-1", 0)] == 0  # all or nothing


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"labels": [{"id": "r", "label": 1}]}, 400, "string 'model_name'"),
        ({"model_name": "shop", "labels": []}, 400, "non-empty list 'labels'"),
        ({"model_name": "shop", "labels": [{"id": "r", "row": -1, "label": 1}]}, 400, "labels[0]"),
        ({"model_name": "shop", "labels": [{"id": "r", "row": 1.5, "label": 1}]}, 400, "labels[0]"),
        ({"model_name": "shop", "labels": [{"id": "r", "label": None}]}, 400, "labels[0]"),
        ({"model_name": "shop", "labels": [{"id": 5, "label": 1}]}, 400, "labels[0]"),
        ({"model_name": "nope", "labels": [{"id": "r", "label": 1}]}, 404, "unknown system 'nope'"),
        ({"model_name": "shop", "labels": [{"id": "r", "label": 1}] * 4}, 413, "4 labels"),
    ],
)
def test_bad_feedback_is_refused_with_the_reason(
    serve_home: Path,
    serve_client: Callable[..., TestClient],
    body: dict[str, Any],
    status: int,
    message: str,
) -> None:
    secret = tokens(serve_home, otto="operator")["otto"]
    client = serve_client(serve_home, max_batch_rows=3)
    response = client.post("/regrow/v1/feedback", json=body, headers=bearer(secret))
    assert response.status_code == status
    assert message in response.json()["error"]
    if status == 400 and "model_name" in body:  # its example names the model, not "churn"
        assert '{"model_name": "shop", "labels": [' in str(response.json())


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_checked_token_is_remembered_until_its_ttl_passes(tmp_path: Path) -> None:
    catalog = Catalog(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        catalog.identities.add("admin", "admin", actor="setup")
        catalog.identities.add("otto", "operator", actor="admin")
        token, secret = catalog.identities.create_token("otto", actor="admin")
        clock = Clock()
        guard = Guard(catalog, ttl=10.0, clock=clock)
        header = f"Bearer {secret}"
        assert guard.cached(header, "operator") is None
        assert guard.check(header, "operator", "send feedback").name == "otto"
        assert guard.cached(header, "operator") is not None
        assert guard.cached(header, "admin") is None  # a role above the cached one is checked
        catalog.identities.revoke_token(token.id, actor="admin")
        clock.now = 9.0
        assert guard.check(header, "operator", "send feedback").name == "otto"  # cached
        clock.now = 11.0
        assert guard.cached(header, "operator") is None
        with pytest.raises(AuthError, match="revoked"):
            guard.check(header, "operator", "send feedback")
        with pytest.raises(PermissionDenied, match="needs the admin role"):
            guard.check(f"Bearer {catalog.identities.create_token('otto', actor='admin')[1]}",
                        "admin", "manage")  # fmt: skip
    finally:
        catalog.close()


def test_the_dashboard_is_served_only_while_inference_is_open(
    serve_home: Path, serve_client: Callable[..., TestClient]
) -> None:
    open_client = serve_client(serve_home)
    assert open_client.get("/ui").status_code == 200
    assert open_client.get("/api/ui/overview").status_code == 200
    secured = serve_client(serve_home, inference="token")
    assert secured.get("/ui").status_code == 404  # it would show the catalog to anyone
    assert secured.get("/api/ui/overview").status_code == 404
    assert not any(p.startswith("/api/ui") for p in secured.get("/openapi.json").json()["paths"])
