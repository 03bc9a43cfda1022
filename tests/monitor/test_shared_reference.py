"""What monitoring works out from a reference is kept for the process, and changes nothing.

A repeated monitor of one version (``regrow watch``, ``regrow serve``) reuses the reference
sample, the fitted estimators, attribution's loss models and the PCA
(:mod:`regrow.monitor.shared`): its report must equal, to the last digit, the report of a
monitor that worked everything out again, and a different policy, seed or model must not
reuse what another made.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from regrow import Ensemble, Member, System, Workspace
from regrow.demo import make_window
from regrow.monitor import shared
from regrow.monitor.attribution import attribute
from regrow.monitor.chunks import Chunking
from regrow.monitor.multivariate import multivariate_drift
from regrow.monitor.signals import Scored, Task, performance_signals
from regrow.plan.policy import Policy


def _system() -> System:
    return System(
        "churn",
        target="churned",
        components=[
            Member("account", LogisticRegression(), inputs=["tenure_months", "monthly_fee"]),
            Member("geo", LogisticRegression(), inputs=["distance_km", "network_quality"]),
            Ensemble("ensemble", weights={"account": 1, "geo": 1}),
        ],
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, str]]:
    home: Path = tmp_path_factory.mktemp("shared") / "ws"
    with Workspace.init(home) as ws:
        reference = ws.snapshot(make_window(3000, start="2026-01-01", days=90, seed=0), name="ref")
        yield ws, ws.train(_system(), reference).version.ref


@pytest.fixture(autouse=True)
def cold() -> Iterator[None]:
    shared.clear()
    yield
    shared.clear()


def _window(ws: Workspace, seed: int, *, labelled: bool = False) -> str:
    rows = make_window(400, start="2026-07-01", days=7, seed=seed, expanded=True)
    if not labelled:
        rows = rows.drop(columns=["churned"])
    return ws.snapshot(rows, name=f"w{seed}{'l' if labelled else ''}", check_schema=False).id


def _report(ws: Workspace, version: str, window: str, **kwargs: Any) -> dict[str, Any]:
    report = ws.monitor(version, window, record=False, **kwargs).to_dict()
    report.pop("timings")  # seconds: the one thing that is meant to differ
    return report


def _counts() -> dict[str, tuple[int, int]]:
    return {name: (c.hits, c.misses) for name, c in shared.caches().items()}


@pytest.mark.parametrize("labelled", [False, True], ids=["unlabelled", "labelled"])
def test_a_warm_monitor_reports_what_a_cold_one_does(
    trained: tuple[Workspace, str], labelled: bool
) -> None:
    ws, version = trained
    first, second = _window(ws, 1, labelled=labelled), _window(ws, 2, labelled=labelled)
    chunking = Chunking(count=3)
    cold_first = _report(ws, version, first, chunking=chunking)
    made = _counts()
    warm_first = _report(ws, version, first, chunking=chunking)
    warm_second = _report(ws, version, second, chunking=chunking)
    reused = _counts()
    shared.clear()
    cold_second = _report(ws, version, second, chunking=chunking)
    assert warm_first == cold_first
    assert warm_second == cold_second
    assert cold_first["impacts"]
    assert cold_first["estimates"]["rows"]
    assert cold_first["multivariate"]
    # The warm monitors made nothing new that depends on the reference alone.
    for name in ("references", "estimators", "pca fits", "distributions"):
        assert reused[name][1] == made[name][1] >= 1, name
        assert reused[name][0] > made[name][0], name
    if not labelled:  # with labels the loss models are fitted on the window
        assert reused["loss models"][1] == made["loss models"][1] >= 1


def test_a_different_policy_misses(trained: tuple[Workspace, str]) -> None:
    ws, version = trained
    window = _window(ws, 3)
    before = ws.policy()
    _report(ws, version, window)
    made = _counts()["estimators"][1]
    body = before.to_dict()
    changed = Policy.from_dict(
        {**body, "monitoring": {**body["monitoring"], "cost_matrix": [[0, -1], [-5, 10]]}}
    )
    ws.set_policy(changed)
    try:
        report = _report(ws, version, window)
        assert _counts()["estimators"][1] == made + 1
        assert any(r["metric"] == "business_value" for r in report["estimates"]["rows"])
        shared.clear()
        assert _report(ws, version, window) == report
    finally:
        ws.set_policy(before)


def _scored(seed: int, rows: int, labelled: bool) -> Scored:
    rng = np.random.default_rng(seed)
    p = rng.beta(2, 2, rows)
    y = (rng.uniform(size=rows) < p).astype(int) if labelled else None
    return Scored(pd.DataFrame({"x": p}), p, y)


def test_estimators_are_kept_per_key_and_seed() -> None:
    task = Task("classification", (0, 1))
    reference, window = _scored(0, 3000, True), _scored(1, 500, False)
    calls: list[int] = []

    def scored() -> Scored:
        calls.append(1)
        return reference

    plain = performance_signals(task, reference, window, [], seed=0)
    kept = performance_signals(task, scored, window, [], seed=0, reference_key="r")
    again = performance_signals(task, scored, window, [], seed=0, reference_key="r")
    assert plain == kept == again
    assert len(calls) == 1
    other = performance_signals(task, scored, window, [], seed=1, reference_key="r")
    assert len(calls) == 2
    assert other == performance_signals(task, reference, window, [], seed=1)
    performance_signals(task, scored, window, [], metrics=("accuracy",), reference_key="r")
    assert len(calls) == 3


def test_a_regressions_estimator_is_kept_and_gives_the_same_numbers() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=2500)
    y = x + rng.normal(size=2500) * (0.2 + np.abs(x))
    reference = Scored(pd.DataFrame({"x": x[:2000]}), x[:2000], y[:2000])
    window = Scored(pd.DataFrame({"x": x[2000:]}), x[2000:], None)
    task = Task("regression")
    plain = performance_signals(task, reference, window, [], seed=0)
    kept = performance_signals(task, reference, window, [], seed=0, reference_key="reg")
    again = performance_signals(task, reference, window, [], seed=0, reference_key="reg")
    assert plain.method == "dle"
    assert plain == kept == again
    assert (shared.ESTIMATORS.hits, shared.ESTIMATORS.misses) == (1, 1)


def test_a_reference_too_small_is_kept_with_its_warning() -> None:
    task = Task("classification", (0, 1))
    small = _scored(0, 30, True)
    first = performance_signals(task, small, _scored(1, 50, False), [], reference_key="small")
    assert first.method is None
    assert "30 labelled rows" in first.warnings[0]
    again = performance_signals(task, small, _scored(2, 50, False), [], reference_key="small")
    assert again == first


def test_the_pca_is_kept_per_reference_key_and_seed() -> None:
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(rng.normal(size=(2000, 3)), columns=["a", "b", "c"])
    window = pd.DataFrame(rng.normal(size=(300, 3)), columns=["a", "b", "c"])
    cols = ["a", "b", "c"]
    methods = ("pca_reconstruction",)
    plain = multivariate_drift(reference, window, cols, methods=methods, seed=0)
    kept = multivariate_drift(reference, window, cols, methods=methods, seed=0, reference_key="r")
    again = multivariate_drift(reference, window, cols, methods=methods, seed=0, reference_key="r")
    assert plain == kept == again
    assert (shared.PCA_FITS.hits, shared.PCA_FITS.misses) == (1, 1)
    multivariate_drift(reference, window, cols, methods=methods, seed=1, reference_key="r")
    multivariate_drift(reference, window, ["a", "b"], methods=methods, reference_key="r")
    assert shared.PCA_FITS.misses == 3


def test_loss_models_are_kept_per_reference_key_and_seed(
    trained: tuple[Workspace, str],
) -> None:
    ws, version = trained
    model = ws.load(version)
    reference = make_window(2000, start="2026-01-01", days=90, seed=0)
    window = make_window(300, start="2026-07-01", days=7, seed=4, expanded=True)
    window = window.drop(columns=["churned"])
    drifted = {"distance_km": 0.5, "network_quality": 0.4}
    asked: list[int] = []

    def outputs(frame: pd.DataFrame) -> dict[str, np.ndarray]:
        asked.append(len(frame))
        return model.member_outputs(frame)

    plain = attribute(model, reference, window, drifted, fit_rows=1000)
    kept = attribute(
        model, reference, window, drifted, fit_rows=1000, reference_outputs=outputs,
        reference_key="r",
    )  # fmt: skip
    again = attribute(
        model, reference, window, drifted, fit_rows=1000, reference_outputs=outputs,
        reference_key="r",
    )  # fmt: skip
    assert plain == kept == again
    assert asked == [1000]  # the reference was predicted for the first only
    other = attribute(
        model, reference, window, drifted, fit_rows=1000, reference_outputs=outputs,
        reference_key="r", seed=1,
    )  # fmt: skip
    assert len(asked) == 2
    assert other == attribute(model, reference, window, drifted, fit_rows=1000, seed=1)


def test_a_version_is_named_by_its_id_and_its_content(trained: tuple[Workspace, str]) -> None:
    ws, version = trained
    record = ws.catalog.get_system_version(version)
    model = ws.load(version)
    key = shared.version_key(record.id, model)
    assert key is not None
    assert key == shared.version_key(record.id, ws.load(version))
    assert shared.version_key("another", model) != key  # another workspace's version
    model.artifacts = {}  # fitted in memory: nothing names its outputs
    assert shared.version_key(record.id, model) is None


def test_the_cache_keeps_the_most_recent_and_makes_each_value_once() -> None:
    cache: shared.SharedCache[int] = shared.SharedCache("test lru", kept=2)
    made: list[str] = []

    def make(key: str) -> int:
        made.append(key)
        return len(made)

    assert [cache.get(k, functools.partial(make, k)) for k in ("a", "b", "a", "c", "b")] == [
        1,
        2,
        1,
        3,
        4,
    ]
    assert made == ["a", "b", "c", "b"]  # "b" was dropped for "c": "a" was used more recently
    assert len(cache) == 2
    assert "a" not in cache

    gate = threading.Event()

    def slow() -> int:
        gate.wait(5)
        made.append("slow")
        return 7

    found: list[int] = []
    threads = [
        threading.Thread(target=lambda: found.append(cache.get("s", slow))) for _ in range(4)
    ]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join(10)
    assert found == [7, 7, 7, 7]
    assert made.count("slow") == 1

    def broken() -> int:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        cache.get("x", broken)
    assert "x" not in cache
    assert cache.get("x", lambda: 9) == 9
    with pytest.raises(ValueError, match="'kept'"):
        shared.SharedCache("bad", kept=0)


def test_null_samples_are_shared_and_bounded_in_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow as pa

    from regrow.monitor import calibration
    from regrow.monitor.drift import KS, bin_current
    from regrow.monitor.profile import profile_column

    rng = np.random.default_rng(0)
    ref = profile_column("x", pa.array(rng.integers(0, 50, 5000).astype(float)))
    first = calibration.Calibrator(draws=100, seed=3)
    for n in (100, 200, 300):
        first.evaluate(KS(), bin_current(ref, rng.integers(0, 50, n).astype(float)), key=n)
    samples = shared.NULL_SAMPLES.get(("null samples", 3, 100), dict)
    assert len(samples) == 3
    one = sum(a.nbytes for a in next(iter(samples.values())) if a is not None)
    monkeypatch.setattr(calibration, "SAMPLES_BYTES", one * 2)
    second = calibration.Calibrator(draws=100, seed=3)  # trims as it starts
    assert len(samples) == 2
    before = second.evaluate(KS(), bin_current(ref, np.arange(300.0) % 50), key="y")
    assert len(samples) == 2  # 300 rows were simulated already: shared, not simulated again
    monkeypatch.setattr(calibration, "SAMPLES_BYTES", 0)
    calibration.Calibrator(draws=100, seed=3)
    assert len(samples) == 1  # the newest stays, whatever the bound
    fresh = calibration.Calibrator(draws=100, seed=4)
    assert fresh.evaluate(KS(), bin_current(ref, np.arange(300.0) % 50), key="y") != before
