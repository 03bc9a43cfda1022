"""Enforced promotion: protected aliases need a blessed evaluation and approvals by others.

Every refusal names what is missing, is audited, and moves nothing; a forced move needs an
admin and a reason; rollback walks back through the alias's history and never toggles.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from regrow import Member, Policy, System, Workspace
from regrow.errors import (
    AuthError,
    CatalogError,
    ConfigError,
    NotFound,
    PermissionDenied,
    PolicyError,
    PromotionRefused,
)
from regrow.testing import run_cli


def _data(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 2))
    y = (x[:, 0] + 2 * x[:, 1] + 0.3 * rng.normal(size=rows) > 0).astype(int)
    return pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "y": y})


def _system(inputs: list[str]) -> System:
    return System("toy", target="y", components=[Member("m", LogisticRegression(), inputs=inputs)])


def _interface_allowed() -> Policy:
    body = Policy.default().to_dict()
    body["contracts"] = {**body.get("contracts", {}), "interface": "allow"}
    return Policy.from_dict(body)


@pytest.fixture
def governed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """The OS user (the bootstrapped admin) trains weak v1 and strong v2; bob approves; carl
    operates."""
    monkeypatch.delenv("REGROW_TOKEN", raising=False)
    home = tmp_path / "ws"
    ws = Workspace.init(home)
    train = ws.snapshot(_data(600, 0), name="train")
    holdout = ws.snapshot(_data(600, 1), name="holdout")
    v1 = ws.train(_system(["x1"]), train).version.ref
    v2 = ws.train(_system(["x1", "x2"]), train).version.ref
    assert ws.identity.role == "admin"
    assert ws.identity.role == "admin"
    # v2 reads a new input, x2: an interface change these tests allow (see the interface test).
    ws.set_policy(_interface_allowed())
    ws.catalog.identities.add("bob", "approver")
    ws.catalog.identities.add("carl", "operator")
    _, bob_token = ws.catalog.identities.create_token("bob")
    _, carl_token = ws.catalog.identities.create_token("carl")
    yield {
        "ws": ws, "home": home, "v1": v1, "v2": v2, "train": train.id, "holdout": holdout.id,
        "bob": bob_token, "carl": carl_token,
    }  # fmt: skip
    ws.close()


def _as(g: dict[str, object], who: str) -> Workspace:
    return Workspace.open(g["home"], token=str(g[who]))  # type: ignore[arg-type]


def _v1_holds_and_v2_approved(g: dict[str, object]) -> tuple[Workspace, str, str]:
    """bob approves v1, which is promoted, then v2 to replace it: (the workspace, v1, v2)."""
    ws: Workspace = g["ws"]  # type: ignore[assignment]
    v1, v2 = str(g["v1"]), str(g["v2"])
    with _as(g, "bob") as bob:
        bob.approve(v1)
    ws.promote(v1)
    with _as(g, "bob") as bob:
        bob.approve(v2)  # to replace v1, which holds the alias now
    return ws, v1, v2


def _refusals(ws: Workspace) -> list[dict[str, object]]:
    return [e.payload for e in ws.catalog.audit_events(limit=50) if e.action == "promotion.refused"]


def test_first_promotion_needs_an_approval_by_someone_else(governed: dict[str, object]) -> None:
    ws: Workspace = governed["ws"]  # type: ignore[assignment]
    v1 = str(governed["v1"])
    me = ws.identity.name
    with pytest.raises(
        PromotionRefused, match=rf"1 approval\(s\).*author \({me}\).*regrow approve"
    ):
        ws.promote(v1)
    assert ws.catalog.list_aliases() == []
    assert len(_refusals(ws)) == 1
    with pytest.raises(ConfigError, match="author of a version cannot approve"):
        ws.approve(v1)  # the admin, but the one who recorded v1
    with _as(governed, "bob") as bob:
        bob.approve(v1, note="looks fine")
        with pytest.raises(CatalogError, match="already approved"):
            bob.approve(v1)
    moved = ws.promote(v1, reason="first model")
    assert moved.revision == 1
    assert ws.catalog.verify_audit() > 0


def test_a_later_promotion_needs_a_blessed_evaluation_against_the_holder(
    governed: dict[str, object],
) -> None:
    ws, v1, v2 = _v1_holds_and_v2_approved(governed)
    with pytest.raises(
        PromotionRefused, match=r"blessed evaluation of toy:v2 against the holder toy:v1: none"
    ):
        ws.promote(v2)
    # on the snapshot v2 trained on: does not count
    ws.evaluate(v2, str(governed["train"]), baseline=v1)
    with pytest.raises(PromotionRefused, match="did not train on") as refused:
        ws.promote(v2)
    # it said "use other snapshots", and hinted a --policy the workspace's evaluation needs not
    assert "1 evaluation(s) are on snapshots it trained on" in str(refused.value)
    assert "--policy" not in str(refused.value)
    _, comparison = ws.evaluate(v2, str(governed["holdout"]), baseline=v1)
    assert comparison.verdict == "blessed"
    moved = ws.promote(v2, reason="better on holdout")
    assert ws.catalog.get_system_version(moved.version_id).ref == v2
    # and back: the weak v1 evaluated against v2 is rejected, and the refusal says so
    ws.evaluate(v1, str(governed["holdout"]), baseline=v2)
    with pytest.raises(PromotionRefused, match="is rejected"):
        ws.promote(v1)
    assert ws.catalog.get_alias("toy", "champion").version_id == moved.version_id
    assert len(_refusals(ws)) == 3


def test_an_unprotected_alias_moves_freely_but_never_to_its_own_holder(
    governed: dict[str, object],
) -> None:
    ws: Workspace = governed["ws"]  # type: ignore[assignment]
    v1 = str(governed["v1"])
    with _as(governed, "carl") as carl:
        carl.promote(v1, "staging")
        with pytest.raises(CatalogError, match="already holds toy@staging"):
            carl.promote(v1, "staging")
    assert ws.catalog.get_alias("toy", "staging").revision == 1


def test_force_needs_an_admin_and_a_reason(governed: dict[str, object]) -> None:
    ws: Workspace = governed["ws"]  # type: ignore[assignment]
    v1 = str(governed["v1"])
    with _as(governed, "carl") as carl, pytest.raises(PermissionDenied, match="admin"):
        carl.promote(v1, force=True, reason="hotfix")
    with pytest.raises(ConfigError, match="needs a reason"):
        ws.promote(v1, force=True)
    moved = ws.promote(v1, force=True, reason="incident 42: restore the known-good model")
    assert moved.revision == 1
    (move,) = ws.catalog.alias_history("toy", "champion")
    assert move.kind == "force"
    assert move.actor == ws.identity.name
    forced = next(e for e in ws.catalog.audit_events() if e.action == "alias.force")
    assert any("approval" in str(b) for b in forced.payload["bypassed"])
    assert any(e.action == "auth.denied" for e in ws.catalog.audit_events())
    # to the version it holds: nothing to do, said plainly (not "it lacks ...", nor a hint
    # to --force, which changes nothing either)
    for force in (False, True):
        with pytest.raises(CatalogError) as refused:
            ws.promote(v1, force=force, reason="again")
        assert refused.value.message == (
            f"{v1} already holds toy@champion, so the move would change nothing"
        )
        assert "--force" not in str(refused.value.hint)
    assert ws.catalog.get_alias("toy", "champion").revision == 1


def test_approvals_come_from_active_approvers(governed: dict[str, object]) -> None:
    ws: Workspace = governed["ws"]  # type: ignore[assignment]
    v1 = str(governed["v1"])
    with _as(governed, "carl") as carl, pytest.raises(PermissionDenied, match="approver"):
        carl.approve(v1)
    with _as(governed, "bob") as bob:
        bob.approve(v1)
    ws.catalog.identities.revoke("bob")
    with pytest.raises(PromotionRefused, match="it has 0"):
        ws.promote(v1)
    with pytest.raises(AuthError):
        _as(governed, "bob").approve(v1)


def test_rollback_walks_back_through_the_history(governed: dict[str, object]) -> None:
    ws: Workspace = governed["ws"]  # type: ignore[assignment]
    v1, v2 = str(governed["v1"]), str(governed["v2"])
    v3 = ws.train(_system(["x2"]), str(governed["train"])).version.ref
    for v in (v1, v2, v3):
        ws.promote(v, "staging")
    ref = lambda record: ws.catalog.get_system_version(record.version_id).ref  # noqa: E731
    assert ref(ws.rollback("toy", "staging")) == v2
    assert ref(ws.rollback("toy", "staging")) == v1
    with pytest.raises(CatalogError, match="no earlier holder"):
        ws.rollback("toy", "staging")
    ws.promote(v3, "staging")
    assert ref(ws.rollback("toy", "staging")) == v1
    kinds = [m.kind for m in ws.catalog.alias_history("toy", "staging")]
    assert kinds == ["rollback", "move", "rollback", "rollback", "move", "move", "move"]


def test_the_cli_refuses_with_what_is_missing_and_no_traceback(
    governed: dict[str, object], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    home = str(governed["home"])
    v1 = str(governed["v1"])
    code, out, err = run_cli(capsys, "promote", v1, "--home", home)
    assert code == 2
    assert "approval" in out + err
    assert "Traceback" not in out + err
    monkeypatch.setenv("REGROW_TOKEN", str(governed["bob"]))
    code, out, err = run_cli(capsys, "approve", v1, "--home", home, "--note", "ok")
    assert code == 0, out + err
    assert "bob approved toy:v1" in out
    monkeypatch.delenv("REGROW_TOKEN")
    assert run_cli(capsys, "promote", v1, "--home", home)[0] == 0
    code, out, _ = run_cli(capsys, "approvals", "--home", home)
    assert "bob" in out
    assert "toy:v1" in out
    code, out, _ = run_cli(capsys, "aliases", "--history", "--home", home)
    assert "move" in out
    code, out, err = run_cli(capsys, "promote", v1, "--home", home)
    assert code == 2
    assert "already holds" in out + err


def test_every_refusal_is_audited_and_changes_nothing(governed: dict[str, object]) -> None:
    ws: Workspace = governed["ws"]  # type: ignore[assignment]
    v1 = str(governed["v1"])
    before = ws.catalog.verify_audit()
    with pytest.raises(ConfigError, match="author of a version"):
        ws.approve(v1)
    with _as(governed, "bob") as bob, pytest.raises(NotFound):
        bob.approve("toy:v9")
    with pytest.raises(PromotionRefused):
        ws.promote(v1)
    with pytest.raises(NotFound):
        ws.promote("toy:v9")
    bad = Path(str(governed["home"])) / "bad.yaml"
    bad.write_text("promotion:\n  approvals: -1\n")
    with pytest.raises(PolicyError, match=r"promotion\.approvals"):
        ws.promote(v1, policy=bad)
    events = [e.action for e in ws.catalog.audit_events(limit=10)]
    refusals = [a for a in events if a != "policy.register"]  # the default policy, first used
    assert refusals[:5] == ["promotion.refused"] * 3 + ["approval.refused"] * 2
    assert ws.catalog.approvals.list() == []
    assert ws.catalog.list_aliases() == []
    assert ws.catalog.verify_audit() == before + 5 + events[:6].count("policy.register")


def test_the_workspace_policy_decides_not_the_callers(governed: dict[str, object]) -> None:
    ws: Workspace = governed["ws"]  # type: ignore[assignment]
    v1, v2 = str(governed["v1"]), str(governed["v2"])
    home = Path(str(governed["home"]))
    lax = home / "lax.yaml"
    lax.write_text("promotion:\n  protected: []\ngates:\n  checks:\n    improvement: {min: -1}\n")
    with _as(governed, "carl") as carl:
        with pytest.raises(PermissionDenied, match="other than the workspace's"):
            carl.promote(v1, policy=lax)  # an operator cannot bring laxer rules
        with pytest.raises(PermissionDenied, match="admin"):
            carl.set_policy(lax)
    with _as(governed, "bob") as bob:
        bob.approve(v1)
    ws.promote(v1)
    with _as(governed, "bob") as bob:
        bob.approve(v2)
    # blessed under a laxer policy's gates: does not count
    _, lax_eval = ws.evaluate(v2, str(governed["holdout"]), baseline=v1, policy=lax)
    assert lax_eval.verdict == "blessed"
    with pytest.raises(PromotionRefused, match="under the workspace's policy"):
        ws.promote(v2)
    # an admin pins a policy: it governs from then on
    strict = home / "strict.yaml"
    strict.write_text("promotion:\n  approvals: 2\n")
    pinned = ws.set_policy(strict)
    assert ws.policy().id == pinned.id
    ws.evaluate(v2, str(governed["holdout"]), baseline=v1)  # under the pinned policy
    with pytest.raises(PromotionRefused, match=r"2 approval\(s\).*it has 1"):
        ws.promote(v2)
    moved = ws.promote(v2, force=True, reason="two approvers are away")
    events = [e for e in ws.catalog.audit_events(limit=100) if e.action == "policy.pin"]
    assert events[0].payload["id"] == pinned.id
    forced = next(e for e in ws.catalog.audit_events() if e.action == "alias.force")
    assert forced.payload["policy"] == pinned.id
    assert moved.revision == 2


def test_an_evaluation_under_the_same_gates_counts_whatever_else_its_policy_says(
    governed: dict[str, object],
) -> None:
    # it was refused: "its 1 evaluation(s) ran other gates (another policy ...)", though the
    # policy given to evaluate differed from the workspace's in its planning section alone
    ws: Workspace = governed["ws"]  # type: ignore[assignment]
    v1, v2 = str(governed["v1"]), str(governed["v2"])
    home = Path(str(governed["home"]))
    with _as(governed, "bob") as bob:
        bob.approve(v1)
    ws.promote(v1)
    with _as(governed, "bob") as bob:
        bob.approve(v2)
    planning = home / "planning.yaml"
    planning.write_text("planning:\n  data: recent+reference\n  retained_rows: 500\n")
    record, same_gates = ws.evaluate(v2, str(governed["holdout"]), baseline=v1, policy=planning)
    assert same_gates.verdict == "blessed"
    assert record.results["policy"] != ws.policy().id
    assert ws.promote(v2).version_id == ws.catalog.get_system_version(v2).id


def test_an_approval_is_for_replacing_one_holder(governed: dict[str, object]) -> None:
    ws: Workspace = governed["ws"]  # type: ignore[assignment]
    v1, v2 = str(governed["v1"]), str(governed["v2"])
    with _as(governed, "bob") as bob:
        bob.approve(v1)  # to replace no version: the first promotion
    ws.promote(v1)
    with _as(governed, "bob") as bob:
        bob.approve(v2)  # to replace v1
    ws.evaluate(v2, str(governed["holdout"]), baseline=v1)
    ws.promote(v2)
    ws.evaluate(v1, str(governed["holdout"]), baseline=v2, policy=None)
    # v1 back over v2: its first approval was for replacing no version, so it does not count
    ws.rollback("toy")  # back to v1 by rollback (operators may)
    ws.promote(v2, force=True, reason="reset")
    with pytest.raises(PromotionRefused, match=r"to replace toy:v2; it has 0"):
        ws.promote(v1)
    with _as(governed, "bob") as bob, pytest.raises(CatalogError, match="nothing to approve"):
        bob.approve(v2)  # v2 holds the alias


def test_reading_needs_an_identity_too(
    governed: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    home = Path(str(governed["home"]))
    v1 = str(governed["v1"])
    with (home / "config.toml").open("a") as fh:  # only tokens identify from now on
        fh.write("\n[auth]\nos_user = false\n")
    code, _, err = run_cli(capsys, "aliases", "--home", str(home))
    assert code == 2
    assert "only API tokens" in err
    with pytest.raises(AuthError):
        Workspace.open(home, token="").load(v1)
    with _as(governed, "carl") as carl:
        assert carl.load(v1).predict(pd.DataFrame({"x1": [0.0], "x2": [0.0]})).shape == (1,)


def test_a_protected_alias_refuses_a_version_its_clients_cannot_call(tmp_path: Path) -> None:
    """contracts.interface: strict (the default): a new input breaks the holder's clients;
    the refusal names it and the ways out, and nothing moves."""
    with Workspace.init(tmp_path / "ws") as ws:
        train = ws.snapshot(_data(300, 0), name="train")
        v1 = ws.train(_system(["x1"]), train).version.ref
        v2 = ws.train(_system(["x1", "x2"]), train).version.ref
        ws.promote(v1, force=True, reason="first")
        with pytest.raises(PromotionRefused) as refused:
            ws.promote(v2, force=False)
        message = str(refused.value)
        assert "input 'x2' (FP64) is new" in message
        assert "regrow adapters propose" in message
        assert "contracts.interface: allow" in message
        assert ws.catalog.get_system_version("toy@champion").ref == v1
        # The same graph on other rows keeps the interface: only the evaluation is missing.
        v3 = ws.train(_system(["x1"]), ws.snapshot(_data(300, 2), name="train")).version.ref
        assert ws.promotion_lacks(v3)
        assert not any("interface" in lack for lack in ws.promotion_lacks(v3))


def test_a_version_with_the_holders_components_needs_approvals_but_no_evaluation(
    governed: dict[str, object],
) -> None:
    """A version made by adding adapters predicts what its holder predicts: no evaluation
    could bless it, so only the approvals are asked for."""
    from regrow.data.adapters import Default

    ws: Workspace = governed["ws"]  # type: ignore[assignment]
    v1 = str(governed["v1"])
    with _as(governed, "bob") as bob:
        bob.approve(v1)
    ws.promote(v1)
    bridged = ws.adapt(v1, [Default("x1", 0.0)]).version.ref
    lacks = ws.promotion_lacks(bridged)
    assert len(lacks) == 1
    assert "approval" in lacks[0]
    with _as(governed, "bob") as bob:
        bob.approve(bridged)
    assert ws.catalog.get_system_version(ws.promote(bridged).version_id).ref == bridged


def test_an_evaluation_blessed_on_a_handful_of_rows_does_not_promote(
    governed: dict[str, object],
) -> None:
    from regrow.catalog.promotion import MIN_EVALUATED_ROWS
    from regrow.evaluate.gates import MIN_ROWS

    assert MIN_EVALUATED_ROWS == MIN_ROWS
    ws, v1, v2 = _v1_holds_and_v2_approved(governed)
    few = ws.snapshot(_data(600, 2).iloc[:12], name="few")
    _, comparison = ws.evaluate(v2, few.id, baseline=v1)
    assert comparison.verdict != "blessed"  # the gates: 12 rows are too few to tell
    # A record blessed on 12 rows (as one made before that rule reads) does not count either.
    import sqlalchemy as sa

    from regrow.catalog.models import Evaluation

    with ws.catalog._engine.begin() as conn:
        conn.execute(sa.update(Evaluation).where(Evaluation.snapshot_id == few.id)
                     .values(verdict="blessed"))  # fmt: skip
    with pytest.raises(PromotionRefused, match=r"blessed on 12 row\(s\), too few to tell"):
        ws.promote(v2)


def test_an_approval_for_an_alias_that_could_never_count_is_refused(
    governed: dict[str, object],
) -> None:
    # a typo ("champoin") was recorded: "bob approved toy:v2 for toy@champoin", exit 0
    v2 = str(governed["v2"])
    with _as(governed, "bob") as bob:
        with pytest.raises(ConfigError, match="has no alias 'champoin'") as info:
            bob.approve(v2, "champoin")
        assert "did you mean 'champion'?" in str(info.value.hint)
        assert bob.catalog.approvals.list(alias="champoin") == []
        bob.approve(v2)  # a protected alias with no holder yet: its first promotion


def test_a_promotion_to_a_misspelt_alias_is_refused_unless_new(
    governed: dict[str, object], capsys: pytest.CaptureFixture[str]
) -> None:
    # `promote toy:v1 --alias champoin` created toy@champoin, exit 0, and no command could
    # take it back
    home, v1 = str(governed["home"]), str(governed["v1"])
    with _as(governed, "carl") as carl:
        carl.promote(v1, "staging")  # a new name, unlike any alias: created as before
        with pytest.raises(ConfigError, match="has no alias 'champoin': promoting would"):
            carl.promote(v1, "champoin")  # close to the protected champion
        with pytest.raises(ConfigError, match="close to 'staging'") as info:
            carl.promote(v1, "stagin")  # close to an alias the system has
        assert info.value.hint == (
            "did you mean --alias staging? To create an alias named 'stagin', pass --new"
        )
        assert [a.name for a in carl.catalog.list_aliases("toy")] == ["staging"]
        refused = carl.catalog.audit_events(subject="alias:toy@champoin")
        assert [e.action for e in refused] == ["promotion.refused"]
        carl.promote(v1, "stagin", new=True)
    code, out, err = run_cli(capsys, "promote", v1, "--alias", "champoin", "--home", home)
    assert code == 2
    assert "did you mean --alias champion?" in out + err
    assert "Traceback" not in out + err


def test_a_revoked_approvers_approval_no_longer_counts(governed: dict[str, object]) -> None:
    # `regrow approve` said "2 approvals so far" with one of the two approvers revoked
    ws: Workspace = governed["ws"]  # type: ignore[assignment]
    v1 = str(governed["v1"])
    version = ws.catalog.get_system_version(v1)
    with _as(governed, "bob") as bob:
        bob.approve(v1)
    assert ws.catalog.approvals.counting(version.id, "champion") == ["bob"]
    ws.revoke_identity("bob")
    assert ws.catalog.approvals.counting(version.id, "champion") == []
    assert len(ws.catalog.approvals.list(alias="champion", version_id=version.id)) == 1


def test_a_typo_of_the_system_in_an_alias_command_names_the_system(
    governed: dict[str, object],
) -> None:
    # it said "'tyo' has no aliases; create one with `regrow promote VERSION --alias NAME`"
    ws: Workspace = governed["ws"]  # type: ignore[assignment]
    with pytest.raises(NotFound) as info:
        ws.rollback("tyo", "champion")
    assert "no system is named 'tyo'; did you mean 'toy'?" in str(info.value.hint)
