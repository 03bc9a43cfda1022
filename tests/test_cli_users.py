"""`regrow users | tokens | whoami` end to end: who acts, what each role may do, and bad input.

The OS user is this process's login (``me``); other people act through their tokens.
"""

from __future__ import annotations

import json
import os
import pwd
import re
from pathlib import Path

import pytest

import regrow.cli.users  # noqa: F401  (registers the commands)
from regrow.catalog import Catalog
from regrow.testing import run_cli

Capture = pytest.CaptureFixture[str]


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REGROW_ACTOR", raising=False)
    monkeypatch.delenv("REGROW_TOKEN", raising=False)
    monkeypatch.delenv("REGROW_ALLOW_OS_USER", raising=False)


@pytest.fixture
def me() -> str:
    """The OS login of this process (the name of its user id's account)."""
    return pwd.getpwuid(os.getuid()).pw_name


@pytest.fixture
def home(tmp_path: Path, capsys: Capture) -> str:
    """A new workspace; its creator (``me``) becomes its first identity, hence admin, on its
    first command."""
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


def _token(capsys: Capture, home: str, name: str, role: str) -> str:
    """Add identity ``name`` with ``role`` (as ``me``, the admin) and return a token of it."""
    _ok(capsys, home, "users", "add", name, "--role", role)
    return _ok(capsys, home, "tokens", "create", name).strip()


def test_the_creator_is_admin_and_manages_users_and_roles(
    capsys: Capture, home: str, me: str
) -> None:
    assert _ok(capsys, home, "whoami").strip() == f"{me} (admin) via OS user"
    mine = json.loads(_ok(capsys, home, "whoami", "--json"))
    assert (mine["name"], mine["role"], mine["via"]) == (me, "admin", "OS user")
    assert "via_token" not in mine
    assert _ok(capsys, home, "users", "add", "bob", "--role", "viewer").strip() == (
        "added bob (viewer)"
    )
    assert _ok(capsys, home, "users", "role", "bob", "approver").strip() == (
        "bob: viewer -> approver"
    )
    listed = json.loads(_ok(capsys, home, "users", "list", "--json"))
    assert sorted((u["name"], u["role"], u["created_by"]) for u in listed) == sorted(
        [(me, "admin", me), ("bob", "approver", me)]
    )
    assert all(set(u) == {"name", "role", "created_at", "created_by", "revoked_at"} for u in listed)
    table = _ok(capsys, home, "users", "list")
    assert "approver" in table
    assert "bob" in table
    assert [a for _, a, _ in _audit(home)] == [
        "identity.bootstrap",
        "identity.add",
        "identity.role",
    ]


def test_the_environment_does_not_choose_who_acts(
    capsys: Capture, home: str, me: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ok(capsys, home, "users", "add", "bob", "--role", "admin")
    _ok(capsys, home, "users", "add", "viv", "--role", "viewer")
    bob = _ok(capsys, home, "tokens", "create", "bob").strip()
    monkeypatch.setenv("REGROW_TOKEN", bob)
    _ok(capsys, home, "users", "role", me, "viewer")
    monkeypatch.delenv("REGROW_TOKEN")
    for variable in ("REGROW_ACTOR", "USER", "LOGNAME"):
        monkeypatch.setenv(variable, "bob")
    assert _ok(capsys, home, "whoami").strip() == f"{me} (viewer) via OS user"
    err = _refused(capsys, home, "users", "add", "carl", "--role", "admin")
    assert f"'{me}' (role viewer) may not add identities" in err
    monkeypatch.setenv("REGROW_ALLOW_OS_USER", "1")
    config = Path(home) / "config.toml"
    config.write_text(config.read_text() + "\n[auth]\nos_user = false\n")
    assert "[auth] os_user = false" in _refused(capsys, home, "whoami")  # 1 cannot turn it on
    config.write_text(config.read_text().replace("os_user = false", "os_user = true"))
    monkeypatch.setenv("REGROW_ALLOW_OS_USER", "0")
    said = _refused(capsys, home, "whoami")  # the environment turned it off, not the file
    assert "REGROW_ALLOW_OS_USER=0 in the environment" in said
    assert "[auth] os_user = false" not in said


def test_a_token_is_shown_once_and_acts_as_its_identity(
    capsys: Capture, home: str, me: str, monkeypatch: pytest.MonkeyPatch
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
    assert sorted(u["name"] for u in json.loads(_ok(capsys, home, "users", "list", "--json"))) == (
        sorted([me, "bob"])
    )  # nothing was added


def test_a_non_admin_sees_and_revokes_only_its_own_tokens(
    capsys: Capture, home: str, me: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ok(capsys, home, "users", "add", "bob", "--role", "approver")
    my_token = json.loads(_ok(capsys, home, "tokens", "create", me, "--json"))
    bob_token = json.loads(_ok(capsys, home, "tokens", "create", "bob", "--json"))
    assert len(json.loads(_ok(capsys, home, "tokens", "list", "--json"))) == 2  # admin: all

    monkeypatch.setenv("REGROW_TOKEN", bob_token["token"])
    mine = json.loads(_ok(capsys, home, "tokens", "list", "--json"))
    assert [t["id"] for t in mine] == [bob_token["id"]]
    err = _refused(capsys, home, "tokens", "list", "--identity", me)
    assert "may not list the tokens of another identity" in err
    err = _refused(capsys, home, "tokens", "revoke", my_token["id"])
    assert "may not revoke a token that is not yours" in err
    err = _refused(capsys, home, "tokens", "create", "bob")
    assert "may not create tokens" in err
    assert _ok(capsys, home, "tokens", "revoke", bob_token["id"]).strip() == (
        f"revoked token {bob_token['id']} of bob"
    )
    err = _refused(capsys, home, "whoami")
    assert f"token '{bob_token['id']}' was revoked" in err
    assert bob_token["token"].split("_", 2)[2] not in err


@pytest.mark.parametrize(
    ("args", "what"),
    [
        (("users", "role", "{name}", "admin"), "change roles"),
        (("users", "revoke", "{name}"), "revoke identities"),
    ],
)
@pytest.mark.parametrize("name", ["nobody-such", "carl"])
def test_a_non_admin_is_refused_before_learning_whether_a_name_exists(
    capsys: Capture,
    home: str,
    me: str,
    monkeypatch: pytest.MonkeyPatch,
    args: tuple[str, ...],
    what: str,
    name: str,
) -> None:
    bob = _token(capsys, home, "bob", "approver")
    _ok(capsys, home, "users", "add", "carl", "--role", "viewer")
    before = _audit(home)
    monkeypatch.setenv("REGROW_TOKEN", bob)
    err = _refused(capsys, home, *(a.format(name=name) for a in args))
    assert f"'bob' (role approver) may not {what}: that needs the admin role" in err
    assert "unknown identity" not in err
    assert me not in err
    assert "carl" not in err
    assert _audit(home) == [*before, ("bob", "auth.denied", "identity:bob")]


def test_a_revoked_user_can_act_neither_by_name_nor_by_token(
    capsys: Capture, home: str, me: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = _token(capsys, home, "bob", "operator")
    assert _ok(capsys, home, "users", "revoke", "bob").strip() == (
        "revoked bob and its 1 active token(s)"
    )
    monkeypatch.setenv("REGROW_TOKEN", token)
    assert "the identity 'bob' of token" in _refused(capsys, home, "whoami")
    monkeypatch.delenv("REGROW_TOKEN")
    ana = _token(capsys, home, "ana", "admin")  # another admin revokes the OS user's identity
    monkeypatch.setenv("REGROW_TOKEN", ana)
    _ok(capsys, home, "users", "revoke", me)
    monkeypatch.delenv("REGROW_TOKEN")
    assert f"identity '{me}' was revoked" in _refused(capsys, home, "whoami")
    assert _audit(home)[-1] == (me, "auth.failed", f"identity:{me}")
    monkeypatch.setenv("REGROW_TOKEN", ana)
    assert [u["name"] for u in json.loads(_ok(capsys, home, "users", "list", "--json"))] == ["ana"]
    assert "revoked" in _ok(capsys, home, "users", "list", "--all")


def test_an_unknown_os_user_is_told_to_ask_an_admin_and_audited(
    capsys: Capture, home: str, me: str
) -> None:
    with Catalog(f"sqlite:///{home}/catalog.db") as catalog:  # someone else set it up
        catalog.identities.add("ana", "admin", actor="ana")
    err = _refused(capsys, home, "tokens", "list")
    assert f"the OS user '{me}' has no identity" in err
    assert f"regrow users add {me} --role operator" in err
    assert _audit(home)[-1] == (me, "auth.failed", f"identity:{me}")


def test_with_os_users_off_only_a_token_identifies(
    capsys: Capture, home: str, me: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = _ok(capsys, home, "tokens", "create", me).strip()  # bootstraps me
    config = Path(home) / "config.toml"
    config.write_text(config.read_text() + "\n[auth]\nos_user = false\n")
    err = _refused(capsys, home, "whoami")
    assert "[auth] os_user = false" in err
    assert "REGROW_TOKEN" in err
    assert _audit(home)[-1] == (me, "auth.failed", "token:?")
    monkeypatch.setenv("REGROW_TOKEN", token)
    assert _ok(capsys, home, "whoami").startswith(f"{me} (admin) via token")


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("users", "add", "two words", "--role", "viewer"), "invalid identity name 'two words'"),
        (("users", "add", "bob", "--role", "boss"), "unknown role 'boss'"),
        (("users", "add", "{me}", "--role", "admin"), "identity '{me}' already exists"),
        (("users", "role", "{me}", "viewer"), "demoting '{me}' would leave no admin"),
        (("users", "role", "nobody", "viewer"), "unknown identity 'nobody'"),
        (("users", "revoke", "{me}"), "revoking '{me}' would leave no admin"),
        (("tokens", "create", "nobody"), "unknown identity 'nobody'"),
        (("tokens", "revoke", "0123456789ab"), "unknown token '0123456789ab'"),
    ],
)
def test_bad_input_is_refused_with_a_hint_and_changes_nothing(
    capsys: Capture, home: str, me: str, args: tuple[str, ...], error: str
) -> None:
    _ok(capsys, home, "whoami")
    before = _audit(home)
    err = _refused(capsys, home, *(a.format(me=me) for a in args))
    assert error.format(me=me) in err
    assert "hint: " in err
    assert _audit(home) == before


@pytest.mark.parametrize(
    "token", ["hunter2", "rgw_0123456789ab_tooshort", "rgw_0123456789ab_" + "x" * 43]
)
def test_a_bad_token_is_refused_and_audited_without_its_secret(
    capsys: Capture, home: str, me: str, monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    _ok(capsys, home, "whoami")
    monkeypatch.setenv("REGROW_ACTOR", "somebody-else")  # the OS login is recorded, not this
    monkeypatch.setenv("REGROW_TOKEN", token)
    err = _refused(capsys, home, "users", "list")
    assert "hunter2" not in err
    assert "tooshort" not in err
    assert "x" * 43 not in err
    actor, action, subject = _audit(home)[-1]
    assert (actor, action) == (me, "auth.failed")
    assert subject == ("token:?" if token == "hunter2" else "token:0123456789ab")
