"""`regrow reproduce`: a version rebuilt from its record in a scratch workspace comes out the
same, component by component; a changed user function, an unrepeatable fit, a lost artifact or
an estimator whose module is gone is named, and the user's workspace is left as it was."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import secrets
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import regrow.cli.reproduce as cli_reproduce
from regrow import Ensemble, Member, System, Transform, Workspace
from regrow.catalog.catalog import Catalog
from regrow.cli import load_system
from regrow.demo import make_window
from regrow.errors import ArtifactNotFound, ComponentError, ConfigError, VersionNotFound
from regrow.fingerprint import fingerprint
from regrow.progress import Step
from regrow.reproduce import DEFAULT_TOLERANCE, reproduce
from regrow.reproduce.parts import explain, parts_now
from regrow.run.runner import execute, partial_bindings
from regrow.run.tasks import load_fitted
from regrow.testing import run_cli


@pytest.fixture(autouse=True)
def _actor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REGROW_ACTOR", "tester")


def build() -> System:
    """Two transforms, three members (one boosted), a stack fitted on their outputs."""
    return System(
        "churn",
        target="churned",
        components=[
            Transform(
                "usage_scaled", StandardScaler(), inputs=["sessions_per_week", "support_calls"]
            ),
            Transform("region_onehot", OneHotEncoder(sparse_output=False), inputs=["region"]),
            Member("account", LogisticRegression(), inputs=["tenure_months", "monthly_fee"]),
            Member("usage", LogisticRegression(), inputs=["usage_scaled"]),
            Member(
                "geo",
                HistGradientBoostingClassifier(max_iter=15, max_leaf_nodes=7),
                inputs=["distance_km", "network_quality", "region_onehot"],
            ),
            Ensemble("ensemble", weights={"account": 1, "usage": 1, "geo": 1}, method="stack"),
        ],
    )


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with churn:v1 (trained), v2 (geo refitted on new rows) and v3 (geo's
    trees continued on them: an update that starts from v2's geo)."""
    folder = tmp_path_factory.mktemp("reproduce") / "ws"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REGROW_ACTOR", "tester")
        with Workspace.init(folder) as ws:
            old = ws.snapshot(make_window(600, start="2026-01-01", days=30, seed=0), name="old")
            new = ws.snapshot(
                make_window(400, start="2026-03-01", days=20, seed=1, expanded=True), name="new"
            )
            system = build()
            v1 = ws.train(system, old).version
            v2 = ws.update(v1.ref, new, components=["geo"], system=system).version
            bindings = partial_bindings(
                ws.catalog,
                system,
                v2,
                new,
                7,
                fresh=[],
                updates={"geo": ("continue", {"extra": 5})},
            )
            v3 = execute(
                ws.catalog, ws.store, system, bindings, kind="update", run_seed=7, parent=v2
            ).version
            assert [v.ref for v in (v1, v2, v3)] == ["churn:v1", "churn:v2", "churn:v3"]
            assert "update" in ws.catalog.get_component_version(v3.manifest["geo"]).parts
    return folder


@pytest.fixture
def ws(home: Path) -> Iterator[Workspace]:
    with Workspace.open(home) as workspace:
        yield workspace


@pytest.fixture
def copy(home: Path, tmp_path: Path) -> Iterator[Workspace]:
    """A copy of the module's workspace, for tests that damage it."""
    shutil.copytree(home, tmp_path / "copy")
    with Workspace.open(tmp_path / "copy") as workspace:
        yield workspace


@pytest.fixture
def scratch_parent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where temporary scratch workspaces go in this test (checked to be left empty)."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def store_files(ws: Workspace) -> set[str]:
    return {p.name for p in Path(ws.store.url).rglob("*") if p.is_file()}


# -- every component comes out the same -------------------------------------------------------


@pytest.mark.parametrize("ref", ["churn:v1", "churn:v2", "churn:v3"])
def test_every_component_of_a_trained_and_an_updated_version_reproduces(
    ws: Workspace, ref: str, scratch_parent: Path
) -> None:
    report = reproduce(ws, ref)
    assert report.reproduced, report.as_dict()
    assert [c.name for c in report] == list(ws.catalog.get_system_version(ref).manifest)
    for c in report:
        assert c.fingerprint_matches
        assert c.verdict in ("identical", "equivalent")
        if c.verdict == "equivalent":  # other bytes: the outputs were compared, and agree
            assert c.max_diff is not None
            assert c.max_diff <= DEFAULT_TOLERANCE
            assert c.rows > 0
        else:
            assert c.bytes_match
    assert sum(report.counts.values()) == len(report.components)
    assert list(scratch_parent.iterdir()) == []  # the scratch workspace is gone


def test_only_one_audit_event_is_written_to_the_workspace(ws: Workspace) -> None:
    events = ws.catalog.verify_audit()
    files = store_files(ws)
    versions = ws.catalog.list_system_versions()
    runs = ws.catalog.list_runs()
    report = reproduce(ws, "churn:v1")
    assert ws.catalog.verify_audit() == events + 1
    event = ws.catalog.audit_events(limit=1)[0]
    assert (event.action, event.subject, event.actor) == (
        "version.reproduce",
        "version:churn:v1",
        "tester",
    )
    assert event.payload["reproduced"] is True
    assert event.payload == json.loads(json.dumps(report.summary()))
    assert store_files(ws) == files
    assert ws.catalog.list_system_versions() == versions
    assert ws.catalog.list_runs() == runs


def test_a_kept_scratch_folder_is_a_workspace_holding_the_rebuilt_version(
    ws: Workspace, tmp_path: Path
) -> None:
    kept = tmp_path / "kept"
    report = reproduce(ws, "churn:v2", scratch=kept)
    assert report.scratch == str(kept)
    original = ws.catalog.get_system_version("churn:v2")
    with Catalog(f"sqlite:///{kept / 'catalog.db'}") as scratch:
        (rebuilt,) = scratch.list_system_versions()
        assert rebuilt.manifest == original.manifest  # same fingerprints, so the same ids
        assert "reproduction of churn:v2" in rebuilt.note
        (run,) = scratch.list_runs()
        assert (run.kind, run.status) == ("reproduce", "succeeded")
    with pytest.raises(ConfigError, match="not an empty folder"):
        reproduce(ws, "churn:v2", scratch=kept)


def _interrupted_rebuild(ws: Workspace, scratch: Path | None = None) -> None:
    """Reproduce churn:v1 and press Ctrl-C (a real SIGINT) once the rebuild advances."""

    def press_ctrl_c(step: Step) -> None:
        if step.name == "rebuild" and step.state == "advance":
            signal.raise_signal(signal.SIGINT)

    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            reproduce(ws, "churn:v1", scratch=scratch, progress=press_ctrl_c)
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_leaves_no_scratch_folder_and_writes_nothing(
    ws: Workspace, scratch_parent: Path
) -> None:
    events = ws.catalog.verify_audit()
    _interrupted_rebuild(ws)
    assert list(scratch_parent.iterdir()) == []
    assert ws.catalog.verify_audit() == events


@pytest.mark.parametrize("existing", [False, True], ids=["new-folder", "empty-folder"])
def test_ctrl_c_leaves_a_kept_folder_as_it_was_found_so_the_command_runs_again(
    ws: Workspace, tmp_path: Path, existing: bool
) -> None:
    # Half a rebuild kept at --keep was no workspace, and "run again" was refused: the
    # folder was not empty any more.
    kept = tmp_path / "kept"
    if existing:
        kept.mkdir()
    _interrupted_rebuild(ws, kept)
    assert kept.is_dir() == existing
    assert not existing or list(kept.iterdir()) == []
    assert reproduce(ws, "churn:v1", scratch=kept).reproduced


def test_a_version_in_a_postgresql_catalog_reproduces(
    tmp_path: Path, postgres_url: str, scratch_parent: Path
) -> None:
    with Workspace.init(tmp_path / "ws", catalog_url=postgres_url) as ws:
        snap = ws.snapshot(make_window(300, start="2026-01-01", days=30, seed=0), name="rows")
        ws.train(build(), snap)
        report = reproduce(ws, "churn:v1")
        assert report.reproduced, report.as_dict()
        assert ws.catalog.audit_events(limit=1)[0].action == "version.reproduce"
        ws.catalog.verify_audit()
    assert list(scratch_parent.iterdir()) == []


# -- what differs is named --------------------------------------------------------------------

HELPERS = '''import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin

FLOOR = 1.0


def log_fee(X):
    return np.log(np.maximum(X, FLOOR))


class Jitter(BaseEstimator, RegressorMixin):
    """Predicts the mean plus a shift drawn from numpy's global, unseeded generator."""

    def fit(self, X, y):
        self.level_ = float(np.mean(y)) + float(np.random.normal())
        return self

    def predict(self, X):
        return np.full(len(X), self.level_)
'''

SYSTEM = """from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import FunctionTransformer

import {helpers}
from regrow import Ensemble, Member, System, Transform


def build():
    return System("churn", target="churned", components=[
        Transform("fee_log", FunctionTransformer({helpers}.log_fee), inputs=["monthly_fee"]),
        Member("account", LogisticRegression(), inputs=["tenure_months", "fee_log"]),
        Member("usage", LogisticRegression(), inputs=["sessions_per_week"]),
        Ensemble("ensemble", weights={{"account": 1.0, "usage": 1.0}}),
    ])


def jitter():
    return System("level", target="monthly_fee", task="regression", components=[
        Member("level", {helpers}.Jitter(), inputs=["tenure_months"]),
    ])
"""


@pytest.fixture
def project(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A system file and the helper module it imports (uniquely named), on sys.path."""
    helpers = f"helpers_{secrets.token_hex(4)}"
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / f"{helpers}.py").write_text(HELPERS)
    (folder / "churn_system.py").write_text(SYSTEM.format(helpers=helpers))
    path = list(sys.path)
    yield folder, helpers
    sys.path[:] = path
    for name in (helpers, "churn_system"):
        sys.modules.pop(name, None)


def test_a_changed_user_function_makes_what_reads_it_differ_and_is_named(
    tmp_path: Path, project: tuple[Path, str]
) -> None:
    folder, helpers = project
    with Workspace.init(tmp_path / "ws") as ws:
        snap = ws.snapshot(make_window(300, start="2026-01-01", days=30, seed=0), name="rows")
        ws.train(load_system(f"{folder / 'churn_system.py'}:build"), snap)
        assert reproduce(ws, "churn:v1").reproduced
        file = folder / f"{helpers}.py"
        file.write_text(file.read_text().replace("np.maximum(X, FLOOR)", "np.maximum(X, 2.0)"))
        report = reproduce(ws, "churn:v1")
    assert not report.reproduced
    fee_log = report["fee_log"]
    assert (fee_log.verdict, fee_log.fingerprint_matches) == ("differs", False)
    assert fee_log.reasons == (f"code changed since training: log_fee ({helpers}.py)",)
    # Rebuilt from the code recorded with it, it has its recorded bytes: only the code differs.
    assert fee_log.bytes_match
    account = report["account"]
    assert account.verdict == "differs"
    assert account.reasons == (
        f"upstream 'fee_log' differs (code changed since training: log_fee ({helpers}.py))",
    )
    assert report["usage"].verdict != "differs"  # it reads no changed code
    assert report["ensemble"].verdict == "differs"  # it reads account
    assert report.summary()["differs"]["fee_log"] == list(fee_log.reasons)


def test_a_fit_that_is_not_repeatable_differs_beyond_the_tolerance_and_says_so(
    tmp_path: Path, project: tuple[Path, str]
) -> None:
    folder, _helpers = project
    with Workspace.init(tmp_path / "ws") as ws:
        snap = ws.snapshot(make_window(200, start="2026-01-01", days=30, seed=0), name="rows")
        ws.train(load_system(f"{folder / 'churn_system.py'}:jitter"), snap)
        strict = reproduce(ws, "level:v1")
        loose = reproduce(ws, "level:v1", tolerance=1_000.0)
    level = strict["level"]
    assert level.fingerprint_matches
    assert not level.bytes_match
    assert level.max_diff is not None
    assert level.max_diff > DEFAULT_TOLERANCE
    assert level.verdict == "differs"
    assert level.reasons[0].startswith("outputs differ by up to")
    assert "the fit is not repeatable" in level.reasons[1]
    assert loose["level"].verdict == "equivalent"
    assert loose.reproduced


def test_a_library_version_that_moved_since_training_is_named(ws: Workspace) -> None:
    """A record written where scikit-learn was 0.0.1: recomputed now, the version moved."""
    version = ws.catalog.get_system_version("churn:v1")
    record = ws.catalog.get_component_version(version.manifest["usage"])
    older = {**record.parts, "deps": {**record.parts["deps"], "scikit-learn": "0.0.1"}}
    then = dataclasses.replace(record, parts=older, fingerprint=fingerprint(older))
    assert record.artifact is not None
    now = parts_now(
        then,
        estimator=load_fitted(ws.store.get(record.artifact)).spec.estimator,
        column_hashes=ws.catalog.get_snapshot("old").column_hashes,
        upstream=record.parts["upstream"],
    )
    assert now.parts == record.parts  # everything else recomputes to what was recorded
    installed = importlib.metadata.version("scikit-learn")
    assert explain(then, now, {}).reasons == (f"scikit-learn 0.0.1 -> {installed}",)


# -- bad input: a clear error, before anything is built ----------------------------------------


def test_an_unknown_version_is_refused_with_the_versions_there_are(
    ws: Workspace, scratch_parent: Path
) -> None:
    with pytest.raises(VersionNotFound, match="churn:v9") as caught:
        reproduce(ws, "churn:v9")
    assert "churn:v3" in str(caught.value.hint)


def test_a_missing_snapshot_artifact_is_named_with_the_repair(
    copy: Workspace, scratch_parent: Path
) -> None:
    snap = copy.catalog.get_snapshot("new")
    (Path(copy.store.url) / snap.artifact[:2] / snap.artifact).unlink()
    events = copy.catalog.verify_audit()
    with pytest.raises(ArtifactNotFound) as caught:
        reproduce(copy, "churn:v2")
    assert f"snapshot {snap.id[:12]} (new)" in caught.value.message
    assert "regrow doctor" in str(caught.value.hint)
    assert list(scratch_parent.iterdir()) == []
    assert copy.catalog.verify_audit() == events


def test_a_missing_component_artifact_is_named_with_the_repair(
    copy: Workspace, scratch_parent: Path
) -> None:
    version = copy.catalog.get_system_version("churn:v3")
    record = copy.catalog.get_component_version(version.manifest["usage"])
    assert record.artifact is not None
    (Path(copy.store.url) / record.artifact[:2] / record.artifact).unlink()
    with pytest.raises(ArtifactNotFound) as caught:
        reproduce(copy, "churn:v3")
    assert f"component 'usage' of churn:v3 (component version {record.id})" in str(caught.value)
    assert "regrow doctor --repair" in str(caught.value.hint)
    assert list(scratch_parent.iterdir()) == []


def test_an_estimator_whose_module_is_gone_names_the_module(
    tmp_path: Path, scratch_parent: Path
) -> None:
    library = f"fakelib_{secrets.token_hex(4)}"
    site = tmp_path / "site-packages"  # installed code: pickled by reference, not by value
    site.mkdir()
    (site / f"{library}.py").write_text(
        "from sklearn.linear_model import LogisticRegression\n\n\n"
        "class Wrapped(LogisticRegression):\n    pass\n"
    )
    sys.path.insert(0, str(site))
    try:
        module = __import__(library)
        system = System(
            "toy", target="churned", components=[Member("m", module.Wrapped(), inputs=["x"])]
        )
        with Workspace.init(tmp_path / "ws") as ws:
            rows = pd.DataFrame({"x": np.arange(40.0), "churned": np.arange(40) % 2})
            ws.train(system, ws.snapshot(rows, name="rows"))
            sys.path.remove(str(site))
            del sys.modules[library]
            with pytest.raises(ComponentError) as caught:
                reproduce(ws, "toy:v1")
    finally:
        if str(site) in sys.path:
            sys.path.remove(str(site))
        sys.modules.pop(library, None)
    assert f"its module {library!r} is not importable here" in caught.value.message
    assert "component 'm' of toy:v1" in caught.value.message
    assert list(scratch_parent.iterdir()) == []


@pytest.mark.parametrize("tolerance", [-1.0, float("nan"), "0.1", True])
def test_a_bad_tolerance_is_refused(ws: Workspace, tolerance: object) -> None:
    events = ws.catalog.verify_audit()
    with pytest.raises(ConfigError, match="tolerance must be a finite number"):
        reproduce(ws, "churn:v1", tolerance=tolerance)  # type: ignore[arg-type]
    assert ws.catalog.verify_audit() == events


# -- the command --------------------------------------------------------------------------------


def test_the_command_prints_the_table_and_exits_0_when_reproduced(
    capsys: pytest.CaptureFixture[str], home: Path, scratch_parent: Path
) -> None:
    code, out, _err = run_cli(capsys, "reproduce", "churn:v2", "--home", str(home))
    assert code == 0, out
    assert "churn:v2 reproduced: 6/6 components match" in out
    for name in ("usage_scaled", "region_onehot", "account", "usage", "geo", "ensemble"):
        assert name in out


def test_the_command_prints_json(
    capsys: pytest.CaptureFixture[str], home: Path, tmp_path: Path
) -> None:
    kept = tmp_path / "kept"
    code, out, _err = run_cli(
        capsys, "reproduce", "churn:v1", "--home", str(home), "--json", "--keep", str(kept)
    )
    assert code == 0
    data = json.loads(out)
    assert data["version"] == "churn:v1"
    assert data["reproduced"] is True
    assert data["scratch"] == str(kept)
    assert (kept / "config.toml").is_file()
    assert {c["verdict"] for c in data["components"]} <= {"identical", "equivalent"}
    assert sum(data["counts"].values()) == 6
    code, out, _err = run_cli(capsys, "versions", "--home", str(kept), "--json")
    assert code == 0  # the kept scratch folder is a workspace of its own
    assert [v["version"] for v in json.loads(out)] == ["churn:v1"]


def test_the_command_exits_1_when_a_component_differs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, project: tuple[Path, str]
) -> None:
    folder, helpers = project
    with Workspace.init(tmp_path / "ws") as ws:
        snap = ws.snapshot(make_window(200, start="2026-01-01", days=30, seed=0), name="rows")
        ws.train(load_system(f"{folder / 'churn_system.py'}:build"), snap)
    file = folder / f"{helpers}.py"
    file.write_text(file.read_text().replace("FLOOR = 1.0", "FLOOR = 3.0"))
    code, out, _err = run_cli(capsys, "reproduce", "churn:v1", "--home", str(tmp_path / "ws"))
    assert code == 1
    assert "churn:v1 not reproduced: 3 of 4 components differ" in out
    assert "code changed since training: FLOOR" in out


def test_the_command_reports_an_unknown_version_with_a_hint(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    code, _out, err = run_cli(capsys, "reproduce", "churn:v9", "--home", str(home))
    assert code == 2
    assert "unknown version 'churn:v9'" in err
    assert "hint:" in err


def test_the_command_default_tolerance_is_the_library_default() -> None:
    assert cli_reproduce.DEFAULT_TOLERANCE == DEFAULT_TOLERANCE
