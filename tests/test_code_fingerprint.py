"""Code fingerprints per component: an edit retrains what it touches, and nothing else.

The table below is issue #10's: ten kinds of edit to a system file (and the helper module it
imports), each followed by ``train``, each retraining exactly the expected components.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from regrow import Workspace
from regrow._code import code_objects
from regrow.cli import load_system, main
from regrow.demo import make_window
from regrow.fingerprint import code_part
from regrow.system import System

HELPERS = '''"""Feature helpers."""
import numpy as np

FLOOR = 1.0


def log_fee(X):
    return np.log(np.maximum(X, FLOOR))


def unused(X):
    return X * 2
'''

SYSTEM = '''"""The churn system."""
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

import helpers
from regrow import Ensemble, Member, System, Transform


def gbdt():
    return HistGradientBoostingClassifier(max_iter=15, max_leaf_nodes=7)


def build():
    return System("churn", target="churned", components=[
        Transform("contract_onehot", OneHotEncoder(sparse_output=False), inputs=["contract"]),
        Transform("fee_log", FunctionTransformer(helpers.log_fee), inputs=["monthly_fee"]),
        Transform("usage_scaled", StandardScaler(), inputs=["sessions_per_week", "support_calls"]),
        Member("account", gbdt(), inputs=["tenure_months", "fee_log", "contract_onehot"]),
        Member("usage", LogisticRegression(C=1.0, max_iter=300), inputs=["usage_scaled"]),
        Member("geo", gbdt(), inputs=["distance_km", "network_quality"]),
        Ensemble("ensemble", weights={"account": 1.0, "usage": 1.0, "geo": 1.0}),
    ])
'''

REFORMATTED = '''"""The churn system."""
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    StandardScaler,
)

import helpers
from regrow import Ensemble, Member, System, Transform


def gbdt():
    return HistGradientBoostingClassifier(
        max_iter=15,
        max_leaf_nodes=7,
    )


def build():
    components = [
        Transform(
            "contract_onehot",
            OneHotEncoder(sparse_output=False),
            inputs=["contract"],
        ),
        Transform(
            "fee_log", FunctionTransformer(helpers.log_fee), inputs=["monthly_fee"]
        ),
        Transform(
            "usage_scaled",
            StandardScaler(),
            inputs=["sessions_per_week", "support_calls"],
        ),
        Member(
            "account", gbdt(), inputs=["tenure_months", "fee_log", "contract_onehot"]
        ),
        Member("usage", LogisticRegression(C=1.0, max_iter=300), inputs=["usage_scaled"]),
        Member("geo", gbdt(), inputs=["distance_km", "network_quality"]),
        Ensemble(
            "ensemble",
            weights={"account": 1.0, "usage": 1.0, "geo": 1.0},
        ),
    ]
    return System("churn", target="churned", components=components)
'''

Edit = Callable[[Path], Path]  # edits a copy of the project, returns the system file


def _replace(file: str, old: str, new: str) -> Edit:
    def edit(project: Path) -> Path:
        path = project / file
        text = path.read_text()
        assert old in text, f"{old!r} not in {file}"
        path.write_text(text.replace(old, new))
        return project / "churn_system.py"

    return edit


def _rename(project: Path) -> Path:
    return (project / "churn_system.py").rename(project / "models_v2.py")


def _move(project: Path) -> Path:
    folder = project / "elsewhere" / "models"
    folder.mkdir(parents=True)
    shutil.move(str(project / "helpers.py"), folder / "helpers.py")
    return Path(shutil.move(str(project / "churn_system.py"), folder / "churn_system.py"))


def _reformat(project: Path) -> Path:
    (project / "churn_system.py").write_text(REFORMATTED)
    return project / "churn_system.py"


def _both(*edits: Edit) -> Edit:
    def edit(project: Path) -> Path:
        for e in edits:
            path = e(project)
        return path

    return edit


EDITS: dict[str, tuple[Edit, set[str]]] = {
    "one member's parameter": (
        _replace("churn_system.py", "C=1.0", "C=0.25"),
        {"usage", "ensemble"},
    ),
    "one transform's parameter": (
        _replace("churn_system.py", "StandardScaler()", "StandardScaler(with_mean=False)"),
        {"usage_scaled", "usage", "ensemble"},
    ),
    "a helper used by one transform": (
        _replace("helpers.py", "np.maximum(X, FLOOR)", "np.maximum(X, FLOOR) + 1.0"),
        {"fee_log", "account", "ensemble"},
    ),
    "a helper used by none": (
        _replace("helpers.py", "return X * 2", "return X * 3"),
        set(),
    ),
    "a comment": (
        _both(
            _replace("helpers.py", "FLOOR = 1.0", "FLOOR = 1.0  # fees below are noise"),
            _replace("churn_system.py", "def build():", "# the system\ndef build():"),
        ),
        set(),
    ),
    "a docstring": (
        _both(
            _replace("helpers.py", "def log_fee(X):", 'def log_fee(X):\n    """Log of fees."""'),
            _replace("churn_system.py", '"""The churn system."""', '"""Churn, v2."""'),
        ),
        set(),
    ),
    "reformatting": (_reformat, set()),
    "renaming the file": (_rename, set()),
    "moving it to another folder": (_move, set()),
    "adding an unrelated function": (
        _both(
            _replace(
                "helpers.py", "def unused(X):", "def extra():\n    return 1\n\n\ndef unused(X):"
            ),
            _replace(
                "churn_system.py", "def build():", "def report():\n    pass\n\n\ndef build():"
            ),
        ),
        set(),
    ),
}


def _write_project(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "helpers.py").write_text(HELPERS)
    (folder / "churn_system.py").write_text(SYSTEM)
    return folder


@pytest.fixture(autouse=True)
def _fresh_modules() -> Iterator[None]:
    """Each load imports the edited files anew, as a new `regrow` process would."""
    before_path = list(sys.path)
    yield
    for name in ("helpers", "churn_system", "models_v2"):
        sys.modules.pop(name, None)
    sys.path[:] = before_path


@pytest.fixture
def history() -> pd.DataFrame:
    return make_window(1200, start="2026-01-01", days=60, seed=0)


def _load(path: Path) -> System:
    for name in ("helpers", "churn_system", "models_v2"):
        sys.modules.pop(name, None)
    return load_system(f"{path}:build")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, str, str]]:
    root = tmp_path_factory.mktemp("code")
    project = _write_project(root / "original")
    ws = Workspace.init(root / "ws")
    snap = ws.snapshot(make_window(1200, start="2026-01-01", days=60, seed=0), name="c")
    system = _load(project / "churn_system.py")
    v1 = ws.train(system, snap, workers=1).version
    for name in ("helpers", "churn_system"):
        sys.modules.pop(name, None)
    yield ws, v1.ref, snap.id
    ws.close()


@pytest.mark.parametrize("kind", list(EDITS))
def test_an_edit_retrains_exactly_what_it_touches(
    kind: str, trained: tuple[Workspace, str, str], tmp_path: Path
) -> None:
    ws, v1, snap = trained
    edit, expected = EDITS[kind]
    project = _write_project(tmp_path / "project")
    system = _load(edit(project))
    stale = {s.name for s in ws.status(v1, system=system) if not s.fresh}
    assert stale == expected
    result = ws.train(system, ws.catalog.get_snapshot(snap), workers=1)
    assert set(result.trained) == expected
    if not expected:
        assert result.version.ref == v1  # nothing changed: no new version either


def test_status_names_the_changed_helper(
    trained: tuple[Workspace, str, str], tmp_path: Path
) -> None:
    ws, v1, _ = trained
    project = _write_project(tmp_path / "project")
    EDITS["a helper used by one transform"][0](project)
    rows = {s.name: s for s in ws.status(v1, system=_load(project / "churn_system.py"))}
    assert rows["fee_log"].causes == ("code",)
    assert rows["fee_log"].details["code"] == {"changed": ["log_fee"]}
    assert rows["account"].causes == ("upstream",)
    assert rows["usage"].fresh


def test_a_constant_the_helper_reads_counts(
    trained: tuple[Workspace, str, str], tmp_path: Path
) -> None:
    ws, v1, _ = trained
    project = _write_project(tmp_path / "project")
    _replace("helpers.py", "FLOOR = 1.0", "FLOOR = 5.0")(project)
    rows = {s.name: s for s in ws.status(v1, system=_load(project / "churn_system.py"))}
    assert rows["fee_log"].details["code"] == {"changed": ["FLOOR"]}
    assert {n for n, s in rows.items() if not s.fresh} == {"fee_log", "account", "ensemble"}


def test_status_without_the_system_rehashes_recorded_code_from_disk(
    tmp_path: Path, history: pd.DataFrame
) -> None:
    project = _write_project(tmp_path / "project")
    with Workspace.init(tmp_path / "ws") as ws:
        system = _load(project / "churn_system.py")
        v1 = ws.train(system, ws.snapshot(history, name="c"), workers=1).version
        assert all(s.fresh for s in ws.status(v1.ref))
        helpers = project / "helpers.py"
        helpers.write_text(HELPERS.replace("np.log(", "np.log1p("))
        os.utime(helpers, ns=(time.time_ns(), time.time_ns() + 10_000))
        rows = {s.name: s for s in ws.status(v1.ref)}
        assert rows["fee_log"].causes == ("code",)
        assert rows["fee_log"].details["code"] == {"changed": ["log_fee"]}
        assert rows["account"].causes == ("upstream",)
        assert rows["geo"].fresh


def test_status_through_the_cli_names_the_function(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, history: pd.DataFrame
) -> None:
    project = _write_project(tmp_path / "project")
    history.to_parquet(tmp_path / "old.parquet")
    home = ("--home", str(tmp_path / "ws"))
    for args in (
        ["init", str(tmp_path / "ws")],
        ["snapshot", "create", str(tmp_path / "old.parquet"), "--name", "old", *home],
        ["train", f"{project / 'churn_system.py'}:build", "--snapshot", "old", *home],
    ):
        assert _main(args) == 0
    EDITS["a helper used by one transform"][0](project)
    sys.modules.pop("helpers", None)
    capsys.readouterr()
    assert (
        _main(["status", "churn:v1", "--system", f"{project / 'churn_system.py'}:build", *home])
        == 0
    )
    out = capsys.readouterr().out
    assert "log_fee" in out
    assert "fee_log" in out


def _main(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


# -- what a component reaches --------------------------------------------------------------------


def _module(tmp_path: Path, name: str, source: str) -> object:
    import importlib.util

    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_library_code_is_not_part_of_the_code() -> None:
    assert code_part(Pipeline([("s", StandardScaler())])) == {"objects": {}}


def test_a_user_class_its_user_base_and_the_helpers_its_methods_call(tmp_path: Path) -> None:
    mod: object = _module(
        tmp_path,
        "custom_est",
        "from sklearn.base import BaseEstimator, TransformerMixin\n"
        "def _center(X):\n    return X - X.mean()\n"
        "class Base(BaseEstimator, TransformerMixin):\n    pass\n"
        "class Centered(Base):\n"
        "    def fit(self, X, y=None):\n        return self\n"
        "    def transform(self, X):\n        return _center(X)\n",
    )
    try:
        found = code_objects(Pipeline([("c", mod.Centered())]))  # type: ignore[attr-defined]
        assert sorted(found) == ["Base", "Centered", "_center"]
        assert {o.kind for o in found.values()} == {"class", "function"}
    finally:
        sys.modules.pop("custom_est", None)


def test_partials_lambdas_and_closures_count(tmp_path: Path) -> None:
    mod: object = _module(tmp_path, "fns", "def scale(X, by):\n    return X * by\n")
    try:
        part = code_part(FunctionTransformer(functools.partial(mod.scale, by=2)))  # type: ignore[attr-defined]
        assert list(part["objects"]) == ["scale"]
    finally:
        sys.modules.pop("fns", None)

    def make(factor: float) -> Callable[[object], object]:
        def times(X: object) -> object:
            return X * factor  # type: ignore[operator]

        return times

    a, b = code_part(FunctionTransformer(make(2.0))), code_part(FunctionTransformer(make(3.0)))
    assert a != b  # a captured value is part of the function
    lam1 = code_part(FunctionTransformer(lambda X: X + 1))
    lam2 = code_part(FunctionTransformer(lambda X: X + 2))
    assert lam1 != lam2
    kinds = {o.kind for o in code_objects(FunctionTransformer(lambda X: X)).values()}
    assert kinds == {"bytecode"}


def test_a_constant_imported_from_another_user_module_is_followed(tmp_path: Path) -> None:
    sys.path.insert(0, str(tmp_path))
    try:
        (tmp_path / "settings_mod.py").write_text("LIMIT = 3\n")
        mod: object = _module(
            tmp_path,
            "uses_settings",
            "from settings_mod import LIMIT\ndef clip(X):\n    return X.clip(upper=LIMIT)\n",
        )
        found = code_objects(FunctionTransformer(mod.clip))  # type: ignore[attr-defined]
        assert sorted(found) == ["LIMIT", "clip"]
        assert found["LIMIT"].file == str(tmp_path / "settings_mod.py")
    finally:
        for name in ("uses_settings", "settings_mod"):
            sys.modules.pop(name, None)
        sys.path.remove(str(tmp_path))
