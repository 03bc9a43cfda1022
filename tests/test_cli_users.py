"""`regrow users | tokens | whoami` end to end: who acts, what each role may do, and bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import regrow.cli.users  # noqa: F401  (registers the commands)
from regrow.catalog import Catalog
from regrow.testing import run_cli

Capture = pytest.CaptureFixture[str]


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGROW_ACTOR", "ana")
    monkeypatch.delenv("REGROW_TOKEN", raising=False)
    monkeypatch.delenv("REGROW_ALLOW_OS_USER", raising=False)


@pytest.fixture
def home(tmp_path: Path, capsys: Capture) -> str:
    """A new workspace; its creator ``ana`` is its first identity, hence admin."""
    path = tmp_path / "ws"
    assert run_cli(capsys, "init", str(path))[0] == 0
    return str(path)


def _ok(capsys: Capture, home: str, *args: str) -> str:
    code, out, err = run_cli(capsys, *args, "--home", home)
    assert code == 0, err
    return out


def _refused(capsys: Capture, home: str, *args: str) -> str:
    """The command fails with exit 2 and a regrow error (no traceback); its stderr."""
    code, out, err = run_cli(capsys, *args, "--home", home)
    assert code == 2, out + err
    assert err.startswith("error: ")
    assert "Traceback" not in out + err
    return err


def _audit(home: str) -> list[tuple[str, str, str]]:
    """(actor, action, subject) of every audit event, oldest first."""
    with Catalog(f"sqlite:///{home}/catalog.db") as catalog:
        assert catalog.verify_audit() >= 0
        events = reversed(catalog.audit_events(limit=1000))
        return [(e.actor, e.action, e.subject) for e in events]


def test_the_creator_is_admin_and_manages_users_and_roles(capsys: Capture, home: str) -> None:
    assert _ok(capsys, home, "whoami").strip() == "ana (admin) via OS user"
    me = json.loads(_ok(capsys, home, "whoami", "--json"))
    assert (me["name"], me["role"], me["via"]) == ("ana", "admin", "OS user")
    assert _ok(capsys, home, "users", "add", "bob", "--role", "viewer").strip() == (
        "added bob (viewer)"
    )
    assert _ok(capsys, home, "users", "role", "bob", "approver").strip() == (
        "bob: viewer -> approver"
    )
    listed = json.loads(_ok(capsys, home, "users", "list", "--json"))
    assert [(u["name"], u["role"], u["created_by"]) for u in listed] == [
        ("ana", "admin", "ana"),
        ("bob", "approver", "ana"),
    ]
    table = _ok(capsys, home, "users", "list")
    assert "approver" in table
    assert "bob" in table
    assert [a for _, a, _ in _audit(home)] == [
        "identity.bootstrap",
        "identity.add",
        "identity.role",
    ]


def test_a_token_is_shown_once_and_acts_as_its_identity(
    capsys: Capture, home: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ok(capsys, home, "users", "add", "bob", "--role", "operator")
    code, out, err = run_cli(capsys, "tokens", "create", "bob", "--label", "ci", "--home", home)
    assert code == 0, err
    token = out.strip()
    assert re.fullmatch(r"rgw_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", token)  # stdout: the token alone
    assert "shown only now" in err
    secret = token.split("_", 2)[2]
    listed = _ok(capsys, home, "tokens", "list", "--json")
    assert secret not in listed
    assert [(t["identity"], t["label"]) for t in json.loads(listed)] == [("bob", "ci")]
    assert "hash" not in json.loads(listed)[0]

    monkeypatch.setenv("REGROW_TOKEN", token)
    assert _ok(capsys, home, "whoami").strip() == f"bob (operator) via token {token[4:16]}"
    err = _refused(capsys, home, "users", "add", "carl", "--role", "admin")
    assert "'bob' (role operator) may not add identities: that needs the admin role" in err
    assert "hint: ask an admin" in err
    assert _audit(home)[-1] == ("bob", "auth.denied", "identity:bob")
    monkeypatch.delenv("REGROW_TOKEN")
    assert [u["name"] for u in json.loads(_ok(capsys, home, "users", "list", "--json"))] == [
        "ana",
        "bob",
    ]  # nothing was added


def test_a_non_admin_sees_and_revokes_only_its_own_tokens(
    capsys: Capture, home: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ok(capsys, home, "users", "add", "bob", "--role", "approver")
    ana_token = json.loads(_ok(capsys, home, "tokens", "create", "ana", "--json"))
    bob_token = json.loads(_ok(capsys, home, "tokens", "create", "bob", "--json"))
    assert len(json.loads(_ok(capsys, home, "tokens", "list", "--json"))) == 2  # admin: all

    monkeypatch.setenv("REGROW_TOKEN", bob_token["token"])
    mine = json.loads(_ok(capsys, home, "tokens", "list", "--json"))
    assert [t["id"] for t in mine] == [bob_token["id"]]
    err = _refused(capsys, home, "tokens", "list", "--identity", "ana")
    assert "may not list the tokens of another identity" in err
    err = _refused(capsys, home, "tokens", "revoke", ana_token["id"])
    assert "may not revoke another identity's token" in err
    err = _refused(capsys, home, "tokens", "create", "bob")
    assert "may not create tokens" in err
    assert _ok(capsys, home, "tokens", "revoke", bob_token["id"]).strip() == (
        f"revoked token {bob_token['id']} of bob"
    )
    err = _refused(capsys, home, "whoami")
    assert f"token '{bob_token['id']}' was revoked" in err
    assert bob_token["token"].split("_", 2)[2] not in err


def test_a_revoked_user_can_act_neither_by_name_nor_by_token(
    capsys: Capture, home: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ok(capsys, home, "users", "add", "bob", "--role", "operator")
    token = _ok(capsys, home, "tokens", "create", "bob").strip()
    assert _ok(capsys, home, "users", "revoke", "bob").strip() == (
        "revoked bob and its 1 active token(s)"
    )
    monkeypatch.setenv("REGROW_TOKEN", token)
    assert "the identity 'bob' of token" in _refused(capsys, home, "whoami")
    monkeypatch.delenv("REGROW_TOKEN")
    monkeypatch.setenv("REGROW_ACTOR", "bob")
    assert "identity 'bob' was revoked" in _refused(capsys, home, "whoami")
    monkeypatch.setenv("REGROW_ACTOR", "ana")
    assert "bob" not in _ok(capsys, home, "users", "list")
    assert "revoked" in _ok(capsys, home, "users", "list", "--all")


def test_an_unknown_os_user_is_told_to_ask_an_admin(
    capsys: Capture, home: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ok(capsys, home, "whoami")
    monkeypatch.setenv("REGROW_ACTOR", "zed")
    err = _refused(capsys, home, "tokens", "list")
    assert "the OS user 'zed' has no identity" in err
    assert "regrow users add zed --role operator" in err


def test_with_os_users_off_only_a_token_identifies(
    capsys: Capture, home: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = _ok(capsys, home, "tokens", "create", "ana").strip()  # bootstraps ana
    config = Path(home) / "config.toml"
    config.write_text(config.read_text() + "\n[auth]\nos_user = false\n")
    err = _refused(capsys, home, "whoami")
    assert "[auth] os_user = false" in err
    assert "REGROW_TOKEN" in err
    monkeypatch.setenv("REGROW_TOKEN", token)
    assert _ok(capsys, home, "whoami").startswith("ana (admin) via token")


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("users", "add", "two words", "--role", "viewer"), "invalid identity name 'two words'"),
        (("users", "add", "bob", "--role", "boss"), "unknown role 'boss'"),
        (("users", "add", "ana", "--role", "admin"), "identity 'ana' already exists"),
        (("users", "role", "ana", "viewer"), "demoting 'ana' would leave no admin"),
        (("users", "role", "nobody", "viewer"), "unknown identity 'nobody'"),
        (("users", "revoke", "ana"), "revoking 'ana' would leave no admin"),
        (("tokens", "create", "nobody"), "unknown identity 'nobody'"),
        (("tokens", "revoke", "0123456789ab"), "unknown token '0123456789ab'"),
    ],
)
def test_bad_input_is_refused_with_a_hint_and_changes_nothing(
    capsys: Capture, home: str, args: tuple[str, ...], error: str
) -> None:
    _ok(capsys, home, "whoami")
    before = _audit(home)
    err = _refused(capsys, home, *args)
    assert error in err
    assert "hint: " in err
    assert _audit(home) == before


@pytest.mark.parametrize(
    "token", ["hunter2", "rgw_0123456789ab_tooshort", "rgw_0123456789ab_" + "x" * 43]
)
def test_a_bad_token_is_refused_and_audited_without_its_secret(
    capsys: Capture, home: str, monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    _ok(capsys, home, "whoami")
    monkeypatch.setenv("REGROW_TOKEN", token)
    err = _refused(capsys, home, "users", "list")
    assert "hunter2" not in err
    assert "tooshort" not in err
    assert "x" * 43 not in err
    actor, action, subject = _audit(home)[-1]
    assert (actor, action) == ("ana", "auth.failed")
    assert subject == ("token:?" if token == "hunter2" else "token:0123456789ab")
