"""Lost artifacts are found and rebuilt: by re-running a training, by `regrow doctor --repair`,
and by the command a failed load names. The rebuilt version predicts exactly as before."""

from __future__ import annotations

import json
import random
import re
import shlex
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from regrow import Ensemble, Member, System, Transform, Workspace
from regrow.catalog.integrity import ARTIFACT_BYTES
from regrow.cli import main
from regrow.demo import build_system, make_window
from regrow.errors import ArtifactCorrupted, ArtifactNotFound
from regrow.plan.actions import Continue


@pytest.fixture(autouse=True)
def _actor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGROW_ACTOR", "tester")


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return make_window(400, start="2026-01-01", days=30, seed=0)


@pytest.fixture(scope="module")
def later() -> pd.DataFrame:
    return make_window(300, start="2026-03-01", days=10, seed=1, expanded=True)


def light_system(method: str = "mean") -> System:
    """The demo's graph (three transforms, three members, an ensemble), with fewer rounds."""
    system = build_system()
    for name in ("account", "geo"):
        system[name].estimator.set_params(max_iter=20)
    if method != "mean":
        system = system.replace(
            Ensemble("ensemble", weights={"account": 1.0, "usage": 1.0, "geo": 1.0}, method=method)
        )
    return system


def stored(ws: Workspace, key: str) -> Path:
    return Path(ws.store.url) / key[:2] / key


def flip_byte(file: Path, at: int | None = None) -> None:
    data = bytearray(file.read_bytes())
    data[len(data) // 2 if at is None else at] ^= 0x01
    file.write_bytes(bytes(data))


def artifact_of(ws: Workspace, ref: str, component: str) -> str:
    version = ws.catalog.get_system_version(ref)
    key = ws.catalog.get_component_version(version.manifest[component]).artifact
    assert key is not None
    return key


def cli(*args: str) -> int:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    return int(done.value.code or 0)


# -- fault 1: a lost artifact is refitted when its training runs again ------------------------


def test_rerunning_the_training_refits_a_deleted_component_artifact(
    tmp_path: Path, history: pd.DataFrame, later: pd.DataFrame
) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        snap = ws.snapshot(history, name="history")
        first = ws.train(light_system(), snap)
        before = ws.load(first.version.ref).predict_proba(later)
        geo = first.components["geo"]
        stored(ws, artifact_of(ws, first.version.ref, "geo")).unlink()
        with pytest.raises(ArtifactNotFound, match="cannot load component 'geo' of churn:v1"):
            ws.load(first.version.ref)

        again = ws.train(light_system(), snap)

        assert again.trained == ["geo"]
        assert again.components["geo"].causes == ("artifact missing",)
        assert again.components["geo"].version_id == geo.version_id  # same fingerprint, same row
        assert not again.created_version
        assert again.version.id == first.version.id
        assert again.run.summary["rebuilt"] == ["geo"]
        np.testing.assert_array_equal(ws.load(first.version.ref).predict_proba(later), before)
        [event] = [
            e
            for e in ws.catalog.audit_events(subject=f"component-version:{geo.version_id}")
            if e.action == "component.rebuild"
        ]
        assert event.payload["by"] == "run"
        assert event.payload["run_id"] == again.run.id
        assert event.payload["identical"] is True
        assert ws.doctor().ok


def test_rerunning_the_training_refits_a_truncated_artifact(
    tmp_path: Path, history: pd.DataFrame, later: pd.DataFrame
) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        snap = ws.snapshot(history, name="history")
        first = ws.train(light_system(), snap)
        before = ws.load(first.version.ref).predict_proba(later)
        key = artifact_of(ws, first.version.ref, "usage_scaled")
        record = ws.catalog.get_component_version(first.version.manifest["usage_scaled"])
        assert record.info[ARTIFACT_BYTES] == stored(ws, key).stat().st_size
        stored(ws, key).write_bytes(stored(ws, key).read_bytes()[:100])

        again = ws.train(light_system(), snap)

        assert again.trained == ["usage_scaled"]  # what reads it keeps its fingerprint
        assert again.components["usage_scaled"].causes == ("artifact corrupted",)
        np.testing.assert_array_equal(ws.load(first.version.ref).predict_proba(later), before)


# -- a failed load names a command, and that command repairs it -------------------------------


def test_a_corrupted_artifact_fails_to_load_with_a_command_that_repairs_it(
    tmp_path: Path, history: pd.DataFrame, later: pd.DataFrame
) -> None:
    home = tmp_path / "my workspace"
    with Workspace.init(home) as ws:
        v1 = ws.train(light_system(), ws.snapshot(history, name="history")).version
        before = ws.load(v1.ref).predict_proba(later)
        key = artifact_of(ws, v1.ref, "account")
        flip_byte(stored(ws, key))  # same size: only a hash sees it
        # this workspace keeps what it read, verified then; the next command reads again
        assert ws.load(v1.ref).predict_proba(later).tolist() == before.tolist()
    with Workspace.open(home) as ws, pytest.raises(ArtifactCorrupted) as caught:
        ws.load(v1.ref)
    error = caught.value
    assert "cannot load component 'account' of churn:v1" in error.message
    assert key in error.message
    [command] = re.findall(r"`(regrow doctor[^`]*)`", error.hint or "")
    args = shlex.split(command)
    assert args[:3] == ["regrow", "doctor", "--repair"]

    assert cli(*args[1:]) == 0

    with Workspace.open(home) as ws:
        np.testing.assert_array_equal(ws.load(v1.ref).predict_proba(later), before)
        [event] = [
            e
            for e in ws.catalog.audit_events(subject=f"component-version:{v1.manifest['account']}")
            if e.action == "component.rebuild"
        ]
        assert (event.action, event.payload["by"], event.payload["reason"]) == (
            "component.rebuild",
            "doctor",
            "corrupted",
        )


# -- fault 2: only doctor notices store damage ------------------------------------------------


def test_status_lineage_and_audit_pass_over_damage_that_doctor_finds_and_repairs(
    tmp_path: Path, history: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    home = str(tmp_path / "ws")
    with Workspace.init(home) as ws:
        v1 = ws.train(light_system(), ws.snapshot(history, name="history")).version
        flipped = artifact_of(ws, v1.ref, "geo")
        deleted = artifact_of(ws, v1.ref, "region_onehot")
        flip_byte(stored(ws, flipped))
        stored(ws, deleted).unlink()
    for command in (["status"], ["lineage", "churn:v1"], ["audit", "--verify"]):
        assert cli(*command, "--home", home) == 0  # none of these read the artifacts
    capsys.readouterr()

    assert cli("doctor", "--home", home, "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert {(p["kind"], p["key"]) for p in report["problems"]} == {
        ("corrupt", flipped),
        ("missing", deleted),
    }
    assert not report["ok"]
    assert cli("doctor", "--home", home, "--quick") == 1  # existence and sizes only
    assert "missing" in capsys.readouterr().out

    assert cli("doctor", "--repair", "--home", home) == 0
    out = capsys.readouterr().out
    assert "rebuilt" in out
    assert "2 found, 0 remaining" in out
    assert cli("doctor", "--home", home) == 0
    assert "no problems found" in capsys.readouterr().out


# -- the figures, small: random damage, all found, all rebuilt, same predictions --------------


@pytest.mark.parametrize("seed", [0, 1])
def test_random_damage_is_all_found_and_all_rebuilt_with_the_same_predictions(
    tmp_path: Path, history: pd.DataFrame, later: pd.DataFrame, seed: int
) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        old = ws.snapshot(history, name="history")
        new = ws.snapshot(later, name="recent")
        v1 = ws.train(light_system("stack"), old).version  # a stack: fitted on its members
        v2 = ws.apply(v1.ref, new, [Continue("geo", extra=10)], approve=True).result.version
        assert v2 is not None
        assert "update" in ws.catalog.get_component_version(v2.manifest["geo"]).parts
        frames = {"history": history, "recent": later}
        before = {v.ref: ws.load(v.ref).predict_proba(later) for v in (v1, v2)}
        references = ws.catalog.integrity.artifact_references()
        keys = sorted({r.key for r in references})
        rng = random.Random(seed)
        damaged = rng.sample(keys, 6)
        for key in damaged:
            file = stored(ws, key)
            if rng.random() < 0.5:
                file.unlink()
            else:
                flip_byte(file, rng.randrange(file.stat().st_size))

        found = ws.doctor()
        assert {p.key for p in found.problems} == set(damaged)  # all found, nothing else
        for ref in references:  # snapshots: the rows are stored again, which writes them back
            if ref.kind == "snapshot" and ref.key in damaged:
                ws.snapshot(frames[ref.label], name=ref.label)
        repaired = ws.doctor(repair=True)

        assert repaired.ok, repaired.remaining
        assert all(r.action == "rebuilt" for r in repaired.repairs)
        assert ws.doctor().ok
        for ref, expected in before.items():
            np.testing.assert_array_equal(ws.load(ref).predict_proba(later), expected)
        ws.catalog.verify_audit()


# -- what the recipe alone cannot rebuild --------------------------------------------------


def pipeline_system() -> System:
    """A member whose estimator takes estimators as parameters: not rebuilt from its recipe."""
    member = Member(
        "m",
        make_pipeline(StandardScaler(), LogisticRegression()),
        inputs=["tenure_months", "monthly_fee", "support_calls"],
    )
    return System("pipe", target="churned", components=[member])


def test_an_estimator_the_recipe_cannot_rebuild_is_taken_from_a_sibling_version(
    tmp_path: Path, history: pd.DataFrame, later: pd.DataFrame
) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        v1 = ws.train(pipeline_system(), ws.snapshot(history, name="history")).version
        ws.train(pipeline_system(), ws.snapshot(later, name="recent"))  # same recipe, new data
        before = ws.load(v1.ref).predict_proba(later)
        stored(ws, artifact_of(ws, v1.ref, "m")).unlink()
        repaired = ws.doctor(repair=True)
        assert repaired.ok, repaired.repairs
        np.testing.assert_array_equal(ws.load(v1.ref).predict_proba(later), before)


def test_what_doctor_cannot_rebuild_it_says_so_and_rerunning_the_training_rebuilds(
    tmp_path: Path, history: pd.DataFrame, later: pd.DataFrame
) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        snap = ws.snapshot(history, name="history")
        v1 = ws.train(pipeline_system(), snap).version
        before = ws.load(v1.ref).predict_proba(later)
        key = artifact_of(ws, v1.ref, "m")
        flip_byte(stored(ws, key))
        report = ws.doctor(repair=True)
        [repair] = report.repairs
        assert not repair.ok
        assert "cannot be rebuilt from its recorded parameters" in repair.detail
        assert f"regrow train FILE.py:SYSTEM --snapshot {snap.id[:12]}" in repair.detail
        assert "corrupted bytes were deleted" in repair.detail
        assert not report.ok
        assert ws.train(pipeline_system(), snap).trained == ["m"]
        np.testing.assert_array_equal(ws.load(v1.ref).predict_proba(later), before)
        assert ws.doctor().ok


def test_a_lost_snapshot_blocks_its_components_until_its_rows_are_stored_again(
    tmp_path: Path, history: pd.DataFrame, later: pd.DataFrame
) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        snap = ws.snapshot(history, name="history")
        v1 = ws.train(light_system(), snap).version
        before = ws.load(v1.ref).predict_proba(later)
        stored(ws, snap.artifact).unlink()
        stored(ws, artifact_of(ws, v1.ref, "usage")).unlink()
        with pytest.raises(ArtifactNotFound) as caught:
            ws.frame(snap.id)
        assert "regrow snapshot create FILE --name history" in (caught.value.hint or "")
        report = ws.doctor(repair=True)
        assert {p.kind for p in report.remaining} == {"missing"}
        [failed] = report.repairs
        assert "ArtifactNotFound" in failed.detail
        assert ws.snapshot(history, name="history").id == snap.id  # writes the rows back
        assert ws.doctor(repair=True).ok
        np.testing.assert_array_equal(ws.load(v1.ref).predict_proba(later), before)
        actions = [e.action for e in ws.catalog.audit_events(subject=f"snapshot:{snap.id}")]
        assert actions[0] == "snapshot.restore"


def test_the_doctor_report_is_typed_and_serializable(tmp_path: Path, history: Any) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        v1 = ws.train(light_system(), ws.snapshot(history, name="history")).version
        stored(ws, artifact_of(ws, v1.ref, "geo")).unlink()
        report = ws.doctor(quick=True)
        data = json.loads(json.dumps(report.as_dict()))
        assert data["quick"] is True
        assert data["remaining"] == [f"component-version:{v1.manifest['geo']}"]
        assert data["checked"]["component_versions"] == 7


def test_a_recipe_that_names_a_function_is_not_rebuilt_from_its_label(
    tmp_path: Path, history: pd.DataFrame, later: pd.DataFrame
) -> None:
    """A recipe records a function parameter by name (``'<numpy.log1p>'``): set back as that
    string it would make a transform that cannot run. Doctor says it cannot rebuild it."""
    from sklearn.preprocessing import FunctionTransformer

    system = System(
        "churn",
        target="churned",
        components=[
            Transform("fee_log", FunctionTransformer(np.log1p), inputs=["monthly_fee"]),
            Member("m", LogisticRegression(), inputs=["fee_log", "tenure_months"]),
        ],
    )
    with Workspace.init(tmp_path / "ws") as ws:
        snap = ws.snapshot(history, name="history")
        v1 = ws.train(system, snap).version
        before = ws.load(v1.ref).predict_proba(later)
        stored(ws, artifact_of(ws, v1.ref, "fee_log")).unlink()
        report = ws.doctor(repair=True)
        [repair] = [r for r in report.repairs if "fee_log" in r.detail or not r.ok]
        assert not repair.ok
        assert "cannot be rebuilt from its recorded parameters" in repair.detail
        assert ws.train(system, snap).trained == ["fee_log"]  # rerunning the training does
        np.testing.assert_array_equal(ws.load(v1.ref).predict_proba(later), before)


def test_a_workspace_reads_each_component_artifact_once_across_its_commands(
    tmp_path: Path, history: pd.DataFrame, later: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plan and its run, or a watcher's cycles, unpickle the champion once; an artifact
    lost since is still noticed (the test above)."""
    import regrow.run.tasks as tasks

    with Workspace.init(tmp_path / "ws") as ws:
        v1 = ws.train(light_system(), ws.snapshot(history, name="history")).version
        read: list[int] = []
        load_fitted = tasks.load_fitted
        monkeypatch.setattr(tasks, "load_fitted", lambda data: read.append(1) or load_fitted(data))
        first = ws.load(v1.ref).predict_proba(later)
        assert len(read) == len(v1.manifest)
        ws.evaluate(v1.ref, ws.snapshot(later, name="later"))
        np.testing.assert_array_equal(ws.load(v1.ref).predict_proba(later), first)
        assert len(read) == len(v1.manifest)


def test_doctor_says_when_the_store_holds_none_of_the_catalog_s_artifacts(
    tmp_path: Path,
    history: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A workspace opened with another store (a second `regrow init` on a shared catalog)
    found every artifact missing, and doctor advised refitting them (from a user trial)."""
    from regrow.testing import run_cli

    home = tmp_path / "ws"
    with Workspace.init(home) as ws:
        ws.train(light_system(), ws.snapshot(history, name="history"))
    empty = tmp_path / "other-store"
    empty.mkdir()
    monkeypatch.setenv("REGROW_STORE_URL", f"file://{empty}")
    code, out, _ = run_cli(capsys, "doctor", "--quick", "--home", str(home))
    assert code == 1
    assert "is in the store at" in out
    assert "check that it is this catalog's store" in out
