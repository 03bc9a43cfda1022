"""Identities, roles and API tokens (``catalog.identities``, :mod:`regrow.auth`), on SQLite and
PostgreSQL; and the workspace's ``[auth] os_user`` setting."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from regrow import Workspace
from regrow.auth import os_user, require, requires, resolve_identity
from regrow.catalog import Catalog
from regrow.catalog.audit import GENESIS_HASH
from regrow.catalog.db import create_engine_for
from regrow.catalog.identities import IdentityRecord, role_rank, token_id
from regrow.catalog.models import AuditHead
from regrow.config import Config
from regrow.errors import (
    AuditChainBroken,
    AuthError,
    CatalogError,
    ConfigError,
    NotFound,
    PermissionDenied,
)
from regrow.testing import postgres_schema

PG_URL = os.environ.get("REGROW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The catalog layer's default actor; it never chooses who acts (see the OS user tests).
    monkeypatch.setenv("REGROW_ACTOR", "scripted")
    monkeypatch.delenv("REGROW_TOKEN", raising=False)
    monkeypatch.delenv("REGROW_ALLOW_OS_USER", raising=False)


@pytest.fixture
def login() -> str:
    """The OS login of this process: the name of its user id's account."""
    return pwd.getpwuid(os.getuid()).pw_name


@pytest.fixture
def spoofed(monkeypatch: pytest.MonkeyPatch) -> str:
    """Every environment variable that could name a user says ``ana``; returns ``ana``."""
    for variable in ("REGROW_ACTOR", "USER", "LOGNAME", "LNAME", "USERNAME"):
        monkeypatch.setenv(variable, "ana")
    return "ana"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "catalog.db"
    Catalog(f"sqlite:///{path}").close()
    return path


@pytest.fixture(scope="module")
def postgres_schema_url(postgres_admin: Engine) -> Iterator[str]:
    """A migrated PostgreSQL schema for this module (emptied before each test by ``url``)."""
    with postgres_schema(PG_URL) as url:
        Catalog(url).close()
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty catalog: a copy of a SQLite template, or the module's PostgreSQL
    schema with every row of the previous test deleted."""
    if request.param == "sqlite":
        path = tmp_path / "catalog.db"
        shutil.copyfile(request.getfixturevalue("template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_schema_url")
    engine = create_engine_for(url)
    try:
        with engine.begin() as conn:  # the only tables these tests write
            for table in ("tokens", "identities", "audit_events"):
                conn.execute(sa.text(f"DELETE FROM {table}"))
            conn.execute(sa.update(AuditHead).values(seq=0, hash=GENESIS_HASH))
    finally:
        engine.dispose()
    return url


@pytest.fixture
def catalog(url: str) -> Iterator[Catalog]:
    with Catalog(url) as opened:
        yield opened


def _actions(catalog: Catalog) -> list[str]:
    return [e.action for e in reversed(catalog.audit_events(limit=1000))]


def _everything(url: str) -> str:
    """Every value of every row of the identity, token and audit tables, as one text."""
    engine = create_engine_for(url)
    try:
        with engine.connect() as conn:
            return "\n".join(
                repr(tuple(row))
                for table in ("identities", "tokens", "audit_events")
                for row in conn.execute(sa.text(f"SELECT * FROM {table}"))
            )
    finally:
        engine.dispose()


# -- identities -----------------------------------------------------------------------------


def test_an_identity_is_added_listed_and_audited_with_the_row_it_wrote(catalog: Catalog) -> None:
    ana = catalog.identities.add("ana", "admin", actor="setup")
    bob = catalog.identities.add("bob@example.com", "viewer")
    assert (ana.name, ana.role, ana.created_by, ana.revoked_at) == ("ana", "admin", "setup", None)
    assert bob.created_by == "scripted"  # the catalog layer's default: $REGROW_ACTOR
    assert catalog.identities.get("bob@example.com") == bob
    assert [i.name for i in catalog.identities.list()] == ["ana", "bob@example.com"]
    assert catalog.identities.count() == 2
    event = catalog.audit_events(limit=1)[0]
    assert (event.action, event.subject, event.payload["role"]) == (
        "identity.add",
        "identity:bob@example.com",
        "viewer",
    )
    assert [(c["table"], c["key"]) for c in event.payload["covers"]] == [
        ("identities", "bob@example.com")
    ]
    assert catalog.verify_audit() == 2


def test_an_unknown_identity_is_named_with_the_known_ones(catalog: Catalog) -> None:
    catalog.identities.add("ana", "admin")
    catalog.identities.add("bob", "viewer")
    with pytest.raises(NotFound, match=r"unknown identity 'carl'; the identities are ana, bob"):
        catalog.identities.get("carl")


@pytest.mark.parametrize(
    ("name", "role", "error"),
    [
        ("ana", "superuser", r"unknown role 'superuser'; the roles are viewer, operator, approver"),
        ("ana", "Admin", r"unknown role 'Admin'"),
        ("two words", "viewer", r"invalid identity name 'two words'"),
        ("", "viewer", r"invalid identity name ''"),
        ("-dash", "viewer", r"invalid identity name '-dash'"),
    ],
)
def test_a_bad_name_or_role_is_refused_and_writes_nothing(
    catalog: Catalog, name: str, role: str, error: str
) -> None:
    with pytest.raises(ConfigError, match=error):
        catalog.identities.add(name, role)
    assert catalog.identities.count() == 0
    assert catalog.audit_events() == []


def test_a_duplicate_identity_is_refused_revoked_names_included(catalog: Catalog) -> None:
    catalog.identities.add("ana", "admin")
    catalog.identities.add("bob", "viewer")
    with pytest.raises(CatalogError, match=r"identity 'bob' already exists \(it has role 'viewer'"):
        catalog.identities.add("bob", "admin")
    catalog.identities.revoke("bob")
    with pytest.raises(CatalogError, match=r"'bob' already exists \(it was revoked\)"):
        catalog.identities.add("bob", "viewer")
    assert _actions(catalog) == ["identity.add", "identity.add", "identity.revoke"]


def test_roles_are_ordered_and_a_role_change_is_audited(catalog: Catalog) -> None:
    assert [role_rank(r) for r in ("viewer", "operator", "approver", "admin")] == [0, 1, 2, 3]
    catalog.identities.add("ana", "admin")
    catalog.identities.add("bob", "viewer")
    assert catalog.identities.set_role("bob", "approver", actor="ana").role == "approver"
    event = catalog.audit_events(limit=1)[0]
    assert (event.action, event.actor, event.payload["from"], event.payload["to"]) == (
        "identity.role",
        "ana",
        "viewer",
        "approver",
    )
    with pytest.raises(CatalogError, match="has role 'approver' already"):
        catalog.identities.set_role("bob", "approver")
    with pytest.raises(ConfigError, match="unknown role 'boss'"):
        catalog.identities.set_role("bob", "boss")


def test_the_last_admin_can_be_neither_demoted_nor_revoked(catalog: Catalog) -> None:
    catalog.identities.add("ana", "admin")
    with pytest.raises(CatalogError, match="demoting 'ana' would leave no admin"):
        catalog.identities.set_role("ana", "viewer")
    with pytest.raises(CatalogError, match="revoking 'ana' would leave no admin"):
        catalog.identities.revoke("ana")
    catalog.identities.add("bea", "admin")
    assert catalog.identities.set_role("ana", "viewer").role == "viewer"
    assert catalog.identities.get("bea").role == "admin"


def test_revoking_an_identity_revokes_its_tokens_in_one_audited_write(catalog: Catalog) -> None:
    catalog.identities.add("ana", "admin")
    catalog.identities.add("bob", "operator")
    first, _ = catalog.identities.create_token("bob", label="ci")
    second, _ = catalog.identities.create_token("bob", label="laptop")
    keep, _ = catalog.identities.create_token("ana")
    revoked = catalog.identities.revoke("bob", actor="ana")
    assert not revoked.active
    assert [t.id for t in catalog.identities.list_tokens()] == [keep.id]
    assert all(t.revoked_at == revoked.revoked_at for t in catalog.identities.list_tokens("bob",
        include_revoked=True))  # fmt: skip
    event = catalog.audit_events(limit=1)[0]
    assert event.action == "identity.revoke"
    assert event.payload["tokens"] == sorted([first.id, second.id])
    assert {(c["table"], c["key"]) for c in event.payload["covers"]} == {
        ("identities", "bob"),
        ("tokens", first.id),
        ("tokens", second.id),
    }
    assert [i.name for i in catalog.identities.list()] == ["ana"]
    assert len(catalog.identities.list(include_revoked=True)) == 2
    for act in (
        lambda: catalog.identities.revoke("bob"),
        lambda: catalog.identities.set_role("bob", "admin"),
        lambda: catalog.identities.create_token("bob"),
    ):
        with pytest.raises(CatalogError, match="identity 'bob': it was revoked"):
            act()
    assert catalog.verify_audit() == 6


def test_an_altered_identity_row_breaks_the_audit_chain(catalog: Catalog, url: str) -> None:
    catalog.identities.add("ana", "admin")
    catalog.identities.add("bob", "viewer")
    assert catalog.verify_audit() == 2
    engine = create_engine_for(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE identities SET role = 'admin' WHERE name = 'bob'"))
    engine.dispose()
    with pytest.raises(AuditChainBroken):
        catalog.verify_audit()


# -- tokens ---------------------------------------------------------------------------------


def test_a_token_round_trips_and_only_a_salted_hash_is_stored(catalog: Catalog, url: str) -> None:
    catalog.identities.add("ana", "admin")
    record, token = catalog.identities.create_token("ana", label="ci", actor="ana")
    assert re.fullmatch(rf"rgw_{record.id}_[A-Za-z0-9_-]{{43}}", token)
    assert token_id(token) == record.id
    assert (record.identity, record.label, record.created_by) == ("ana", "ci", "ana")
    assert catalog.identities.authenticate(token).name == "ana"
    assert catalog.identities.authenticate(f"  {token}\n").name == "ana"  # pasted with a newline
    assert catalog.identities.authenticate(token).via_token == record.id
    secret = token.split("_", 2)[2]
    stored = _everything(url)
    assert secret not in stored
    assert "$argon2id$v=19$m=19456,t=2,p=1$" in stored  # the hash, with its parameters
    other, again = catalog.identities.create_token("ana")
    assert other.id != record.id
    assert again != token
    assert [t.id for t in catalog.identities.list_tokens("ana")] == [record.id, other.id]
    assert _actions(catalog) == ["identity.add", "token.create", "token.create"]
    assert catalog.verify_audit() == 3


def _refused(catalog: Catalog, token: str, error: str) -> dict[str, object]:
    """Authenticating ``token`` fails with ``error``; the payload of its ``auth.failed``."""
    before = catalog.audit_events(limit=1)[0].seq
    with pytest.raises(AuthError, match=error) as caught:
        catalog.identities.authenticate(token)
    secret = token.split("_", 2)[-1]
    if len(secret) > 12:
        assert secret not in str(caught.value)
    event = catalog.audit_events(limit=1)[0]
    assert (event.seq, event.action) == (before + 1, "auth.failed")
    if len(secret) > 12:
        assert secret not in repr(event)
    return event.payload


@pytest.mark.parametrize(
    ("token", "token_id", "error"),
    [
        ("", None, "the token given is malformed"),
        ("hunter2-hunter2-hunter2", None, "the token given is malformed"),
        ("rgw_0123456789ab_short", "0123456789ab", r"token rgw_0123456789ab_\.\.\. is malformed"),
        ("rgw_XYZ_" + "a" * 43, None, "the token given is malformed"),
        ("rgw_0123456789ab_" + "a" * 44, "0123456789ab", "is malformed"),
    ],
)
def test_a_malformed_token_is_refused_without_echoing_it(
    catalog: Catalog, token: str, token_id: str | None, error: str
) -> None:
    catalog.identities.add("ana", "admin")
    payload = _refused(catalog, token, error)
    assert payload == {"token_id": token_id, "reason": "malformed"}


def test_an_unknown_token_and_a_wrong_secret_get_one_message_and_the_audit_tells_which(
    catalog: Catalog,
) -> None:
    catalog.identities.add("ana", "admin")
    record, token = catalog.identities.create_token("ana")
    unknown = "rgw_" + "0" * 12 + token[16:]
    wrong = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    messages = []
    for bad in (unknown, wrong):
        with pytest.raises(AuthError) as caught:
            catalog.identities.authenticate(bad)
        messages.append(str(caught.value).replace(bad[4:16], "<id>"))
    assert messages[0] == messages[1]
    assert messages[0].startswith("token '<id>' is unknown or its secret is wrong; ")
    events = catalog.audit_events(limit=2)[::-1]
    assert [e.payload for e in events] == [
        {"token_id": "000000000000", "reason": "unknown token"},
        {"token_id": record.id, "reason": "wrong secret"},
    ]
    assert _refused(catalog, unknown, "is unknown or its secret is wrong")["reason"] == (
        "unknown token"
    )


def test_a_failed_authentication_is_recorded_under_the_actor_given(catalog: Catalog) -> None:
    catalog.identities.add("ana", "admin")
    with pytest.raises(AuthError, match="malformed"):
        catalog.identities.authenticate("hunter2", actor="someone")
    with pytest.raises(AuthError, match="malformed"):
        catalog.identities.authenticate("hunter2")
    assert [e.actor for e in catalog.audit_events(limit=2)] == ["scripted", "someone"]


def test_a_revoked_token_and_a_revoked_identity_are_refused(catalog: Catalog) -> None:
    catalog.identities.add("ana", "admin")
    catalog.identities.add("bob", "operator")
    old, old_token = catalog.identities.create_token("bob")
    _, bob_token = catalog.identities.create_token("bob")
    assert catalog.identities.revoke_token(old.id, actor="ana").revoked_at is not None
    assert catalog.audit_events(limit=1)[0].action == "token.revoke"
    payload = _refused(catalog, old_token, rf"token '{old.id}' was revoked")
    assert payload["reason"] == "revoked token"
    assert catalog.identities.authenticate(bob_token).name == "bob"  # the other one still works
    with pytest.raises(CatalogError, match=rf"token '{old.id}' was revoked already"):
        catalog.identities.revoke_token(old.id)
    with pytest.raises(NotFound, match="unknown token 'nope'"):
        catalog.identities.revoke_token("nope")
    catalog.identities.revoke("bob")
    payload = _refused(catalog, bob_token, "the identity 'bob' of token .* was revoked")
    assert payload["reason"] == "revoked identity"
    assert catalog.verify_audit() == len(catalog.audit_events(limit=1000))


def test_listing_the_tokens_of_an_unknown_identity_is_refused(catalog: Catalog) -> None:
    catalog.identities.add("ana", "admin")
    with pytest.raises(NotFound, match="unknown identity 'zed'; the identities are ana"):
        catalog.identities.list_tokens("zed")
    with pytest.raises(NotFound, match="unknown identity 'zed'"):
        catalog.identities.create_token("zed")
    with pytest.raises(ConfigError, match="'label' must be a string"):
        catalog.identities.create_token("ana", label=None)  # type: ignore[arg-type]
    assert catalog.identities.list_tokens() == []


# -- who acts -------------------------------------------------------------------------------


def _last_event(catalog: Catalog) -> tuple[str, str, str, dict[str, object]]:
    event = catalog.audit_events(limit=1)[0]
    return event.actor, event.action, event.subject, event.payload


def test_the_os_login_comes_from_the_user_id_and_not_the_environment(
    spoofed: str, login: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert os_user() == login != spoofed
    other = next((p for p in pwd.getpwall() if p.pw_name != login), None)
    if other is not None:  # another account's user id: its name, whatever the environment says
        monkeypatch.setattr(os, "getuid", lambda: other.pw_uid)
        assert os_user() == other.pw_name


def test_a_user_id_without_an_account_has_no_login_and_is_refused_audited(
    catalog: Catalog, spoofed: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = {p.pw_uid for p in pwd.getpwall()}
    orphan = next(uid for uid in range(2**31 - 2, 0, -1) if uid not in taken)
    monkeypatch.setattr(os, "getuid", lambda: orphan)
    with pytest.raises(AuthError, match=rf"runs as user id {orphan}, which has no account"):
        os_user()
    with pytest.raises(AuthError, match="which has no account") as caught:
        resolve_identity(catalog)  # not even the bootstrap acts for it
    assert "REGROW_TOKEN" in str(caught.value)
    assert catalog.identities.count() == 0
    assert _last_event(catalog) == (
        "unknown",
        "auth.failed",
        "identity:?",
        {"reason": "no login name"},
    )


def test_the_first_user_of_an_empty_catalog_becomes_admin_under_its_os_login(
    catalog: Catalog, spoofed: str, login: str
) -> None:
    me = resolve_identity(catalog)
    assert (me.name, me.role, me.created_by, me.via_token) == (login, "admin", login, None)
    assert _actions(catalog) == ["identity.bootstrap"]
    assert resolve_identity(catalog) == me  # once only
    assert catalog.identities.count() == 1


def test_the_environment_cannot_choose_the_identity_of_an_os_user(
    catalog: Catalog, spoofed: str, login: str
) -> None:
    catalog.identities.add(spoofed, "admin")
    catalog.identities.add(login, "viewer")
    me = resolve_identity(catalog)
    assert (me.name, me.role) == (login, "viewer")
    with pytest.raises(PermissionDenied, match=rf"'{login}' \(role viewer\) may not add"):
        require(catalog, me, "admin", "add identities")


def test_an_os_user_without_an_identity_is_refused_and_audited(
    catalog: Catalog, spoofed: str, login: str
) -> None:
    catalog.identities.add(spoofed, "admin")
    with pytest.raises(AuthError, match=f"the OS user '{login}' has no identity") as caught:
        resolve_identity(catalog)
    assert f"regrow users add {login} --role operator" in str(caught.value)
    assert catalog.identities.count() == 1
    assert _last_event(catalog) == (
        login,
        "auth.failed",
        f"identity:{login}",
        {"reason": "unknown OS user"},
    )
    assert catalog.verify_audit() == 2


def test_a_token_wins_over_the_os_user_and_is_read_from_regrow_token(
    catalog: Catalog, monkeypatch: pytest.MonkeyPatch, login: str
) -> None:
    catalog.identities.add(login, "admin")
    catalog.identities.add("bob", "viewer")
    record, token = catalog.identities.create_token("bob")
    bob = resolve_identity(catalog, token=token)
    assert (bob.name, bob.via_token) == ("bob", record.id)
    monkeypatch.setenv("REGROW_TOKEN", token)
    assert resolve_identity(catalog).name == "bob"
    assert resolve_identity(catalog, allow_os_user=False).name == "bob"
    assert resolve_identity(catalog, token="").name == login  # an empty token: none
    monkeypatch.setenv("REGROW_TOKEN", token[:20])
    with pytest.raises(AuthError, match="is malformed"):
        resolve_identity(catalog)
    assert _last_event(catalog)[:3] == (login, "auth.failed", f"token:{record.id}")


def test_without_os_users_only_a_token_identifies_and_a_missing_one_is_audited(
    catalog: Catalog, spoofed: str, login: str
) -> None:
    assert resolve_identity(catalog, allow_os_user=False).name == login  # bootstrap
    with pytest.raises(AuthError, match=r"only API tokens .*\[auth\] os_user = false"):
        resolve_identity(catalog, allow_os_user=False)
    assert _last_event(catalog) == (login, "auth.failed", "token:?", {"reason": "no token"})
    _, token = catalog.identities.create_token(login)
    assert resolve_identity(catalog, token=token, allow_os_user=False).name == login


def test_a_revoked_os_user_cannot_act(catalog: Catalog, login: str) -> None:
    catalog.identities.add("ana", "admin")
    catalog.identities.add(login, "operator")
    catalog.identities.revoke(login)
    with pytest.raises(AuthError, match=f"identity '{login}' was revoked"):
        resolve_identity(catalog)
    assert _last_event(catalog) == (
        login,
        "auth.failed",
        f"identity:{login}",
        {"reason": "revoked identity"},
    )


def test_an_open_workspace_stops_acting_once_its_token_is_revoked(
    tmp_path: Path, login: str
) -> None:
    with Workspace.init(tmp_path / "ws") as admin:
        assert admin.identity.name == login  # bootstrapped
        admin.add_identity("bob", "admin")
        record, token = admin.create_token("bob")
        with Workspace.open(tmp_path / "ws", token=token) as bob:
            assert bob.identity.via_token == record.id
            bob.add_identity("carl", "viewer")
            admin.revoke_token(record.id)
            with pytest.raises(AuthError, match=rf"token '{record.id}' was revoked .* after 'bob'"):
                bob.add_identity("dan", "viewer")
            assert [i.name for i in admin.catalog.identities.list()] == ["bob", "carl", login]
            assert _last_event(admin.catalog) == (
                "bob",
                "auth.failed",
                f"token:{record.id}",
                {"reason": "revoked token"},
            )
            _, other = admin.create_token("bob")  # bob's other token still acts
            with Workspace.open(tmp_path / "ws", token=other) as again:
                assert again.add_identity("dan", "viewer").created_by == "bob"
            admin.revoke_identity("bob")
            with pytest.raises(AuthError, match="identity 'bob' was revoked"):
                bob.add_identity("erin", "viewer")
            assert _last_event(admin.catalog)[1:] == (
                "auth.failed",
                "identity:bob",
                {"reason": "revoked identity"},
            )


def test_concurrent_first_users_make_exactly_one_admin(url: str) -> None:
    names = [f"user{i}" for i in range(6)]
    results: dict[str, IdentityRecord | None] = {}
    barrier = threading.Barrier(len(names))

    def first(name: str) -> None:
        with Catalog(url) as mine:
            barrier.wait()
            results[name] = mine.identities.bootstrap(name)

    threads = [threading.Thread(target=first, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    made = [r for r in results.values() if r is not None]
    with Catalog(url) as catalog:
        assert len(made) == 1
        assert [i.name for i in catalog.identities.list()] == [made[0].name]
        assert _actions(catalog) == ["identity.bootstrap"]


def test_two_admins_demoting_each_other_at_once_leave_one_admin(url: str) -> None:
    with Catalog(url) as catalog:
        catalog.identities.add("ana", "admin")
        catalog.identities.add("bea", "admin")
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def demote(name: str) -> None:
        with Catalog(url) as mine:
            barrier.wait()
            try:
                mine.identities.set_role(name, "viewer")
                outcomes.append("demoted")
            except CatalogError:
                outcomes.append("refused")

    for _ in range(3):
        threads = [threading.Thread(target=demote, args=(n,)) for n in ("ana", "bea")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with Catalog(url) as catalog:
            admins = [i.name for i in catalog.identities.list() if i.role == "admin"]
            assert len(admins) == 1
            catalog.identities.set_role("bea" if admins == ["ana"] else "ana", "admin")
    assert sorted(outcomes) == ["demoted"] * 3 + ["refused"] * 3


# -- roles ----------------------------------------------------------------------------------


def test_a_role_below_the_one_needed_is_denied_and_the_attempt_audited(
    catalog: Catalog,
) -> None:
    catalog.identities.add("ana", "admin")
    viv = catalog.identities.add("viv", "viewer")
    with pytest.raises(PermissionDenied) as caught:
        require(catalog, viv, "admin", "add identities")
    assert str(caught.value).startswith(
        "'viv' (role viewer) may not add identities: that needs the admin role; ask an admin"
    )
    assert isinstance(caught.value, PermissionError)
    event = catalog.audit_events(limit=1)[0]
    assert (event.action, event.actor, event.payload) == (
        "auth.denied",
        "viv",
        {"role": "viewer", "needed": "admin", "operation": "add identities"},
    )
    assert catalog.identities.count() == 2
    assert require(catalog, viv, "viewer", "read") == viv
    catalog.identities.set_role("viv", "approver")
    assert require(catalog, viv, "operator", "train").role == "approver"  # read again
    catalog.identities.revoke("viv")
    with pytest.raises(AuthError, match="identity 'viv' was revoked"):
        require(catalog, viv, "viewer", "read")
    assert (catalog.audit_events(limit=1)[0].action, catalog.audit_events(limit=1)[0].actor) == (
        "auth.failed",
        "viv",
    )


class _Desk:
    """An object with a catalog and an identity, as the Workspace has."""

    def __init__(self, catalog: Catalog, identity: IdentityRecord) -> None:
        self.catalog = catalog
        self.identity = identity

    @requires("operator")
    def train(self, system: str, *, seed: int = 0) -> str:
        """Train ``system``."""
        return f"trained {system} with seed {seed}"

    @requires("admin", "force a promotion")
    def force(self) -> str:
        return "forced"


def test_the_decorator_guards_a_method_and_keeps_its_signature(catalog: Catalog) -> None:
    catalog.identities.add("ana", "admin")
    op = _Desk(catalog, catalog.identities.add("olga", "operator"))
    assert op.train("churn", seed=3) == "trained churn with seed 3"
    assert (_Desk.train.__name__, _Desk.train.__doc__) == ("train", "Train ``system``.")
    with pytest.raises(PermissionDenied, match="'olga' \\(role operator\\) may not force a"):
        op.force()
    viewer = _Desk(catalog, catalog.identities.add("viv", "viewer"))
    with pytest.raises(PermissionDenied, match="may not train: that needs the operator role"):
        viewer.train("churn")
    assert _actions(catalog)[2:] == ["auth.denied", "identity.add", "auth.denied"]
    with pytest.raises(ConfigError, match="unknown role 'root'"):
        requires("root")


# -- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "env", "allowed"),
    [
        ("", None, True),
        ("[auth]\nos_user = false\n", None, False),
        ("[auth]\nos_user = true\n", "0", False),
        ("", "0", False),
        ("", "1", True),
        ("[auth]\nos_user = true\n", "1", True),
        ("[auth]\nos_user = false\n", "1", False),  # the environment only tightens
        ("[auth]\nos_user = false\n", "0", False),
    ],
)
def test_os_users_are_mapped_unless_the_workspace_or_environment_says_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, env: str | None, allowed: bool
) -> None:
    (tmp_path / "config.toml").write_text(text)
    if env is not None:
        monkeypatch.setenv("REGROW_ALLOW_OS_USER", env)
    assert Config.load(tmp_path).allow_os_user is allowed


def test_a_config_without_os_users_writes_and_reads_back(tmp_path: Path) -> None:
    Config(home=tmp_path, allow_os_user=False).write()
    assert "[auth]\nos_user = false" in (tmp_path / "config.toml").read_text()
    assert Config.load(tmp_path).allow_os_user is False


@pytest.mark.parametrize(
    ("text", "env", "error"),
    [
        ('[auth]\nos_user = "no"\n', None, r"\[auth\] os_user .* must be true or false"),
        ("[auth]\nusers = 1\n", None, r"unknown key\(s\) \['users'\] in \[auth\]"),
        ("auth = 1\n", None, r"\[auth\] .* must be a table"),
        ("", "maybe", r"REGROW_ALLOW_OS_USER must be 0 or 1 \(got 'maybe'\)"),
    ],
)
def test_a_bad_auth_setting_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, env: str | None, error: str
) -> None:
    (tmp_path / "config.toml").write_text(text)
    if env is not None:
        monkeypatch.setenv("REGROW_ALLOW_OS_USER", env)
    with pytest.raises(ConfigError, match=error):
        Config.load(tmp_path)
