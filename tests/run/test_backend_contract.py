"""The executor backend contract, run against every backend (see conftest.py).

Results, failure reports that name the component, cancelling, task graphs whose upstream
artifacts are filled in as they finish, and runs resumed after a failure or an interruption.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from regrow import Ensemble, Member, System, Transform, Workspace
from regrow.catalog.store import ArtifactStore
from regrow.errors import ConfigError, RunError
from regrow.run.backends import (
    ExecutorBackend,
    LocalBackend,
    Progress,
    TaskOutcome,
    _run_submission,
)
from regrow.run.runner import RunEvent
from regrow.run.tasks import TaskResult, TaskSpec, load_fitted

pytestmark = [
    # Ray's own deprecations, raised in its threads and import machinery, not in regrow.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray"),
    pytest.mark.filterwarnings("ignore::FutureWarning:ray"),
]


def stored_frame(store: ArtifactStore, frame: pd.DataFrame) -> str:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    return store.put(sink.getvalue())


def spec(
    store: ArtifactStore,
    artifact: str,
    component: Member | Transform,
    columns: tuple[str, ...],
    upstream: dict[str, str] | None = None,
) -> TaskSpec:
    return TaskSpec(
        name=component.name,
        component=component,
        target="y",
        seed=7,
        store_url=store.url,
        snapshot_artifact=artifact,
        columns=(*columns, "y"),
        upstream=upstream or {},
    )


def member(name: str, estimator: object = None, inputs: tuple[str, ...] = ("a", "b")) -> Member:
    return Member(name, estimator if estimator is not None else LogisticRegression(), list(inputs))


def slow(name: str) -> Member:
    """A member whose fit takes over ten minutes unless it is cancelled."""
    mlp = MLPClassifier(hidden_layer_sizes=(32,), max_iter=600_000, tol=0, n_iter_no_change=10**6)
    return member(name, mlp)


def after_fast(tasks: list[TaskSpec]) -> dict[str, list[str]]:
    """Every task but "fast" waits for it."""
    return {t.name: ["fast"] for t in tasks if t.name != "fast"}


def collect(outcomes: object) -> dict[str, TaskResult | BaseException]:
    return {task.name: outcome for task, outcome in outcomes}  # type: ignore[attr-defined]


def test_run_yields_each_task_once_with_its_fitted_artifact(
    backend: ExecutorBackend, store: ArtifactStore, frame: pd.DataFrame
) -> None:
    data = stored_frame(store, frame)
    tasks = [spec(store, data, member(f"m{i}"), ("a", "b")) for i in range(3)]
    got = collect(backend.run(tasks))
    assert sorted(got) == ["m0", "m1", "m2"]
    for name, result in got.items():
        assert isinstance(result, TaskResult), result
        assert result.name == name
        fitted = load_fitted(store.get(result.artifact))
        assert fitted.spec.name == name
        assert fitted.info["classes"] == [0, 1]
    # The same task fits the same model, whichever backend ran it.
    reference = collect(LocalBackend().run(tasks[:1]))["m0"]
    assert isinstance(reference, TaskResult)
    ours = load_fitted(store.get(got["m0"].artifact))  # type: ignore[union-attr]
    theirs = load_fitted(store.get(reference.artifact))
    assert (ours.estimator.coef_ == theirs.estimator.coef_).all()


def test_a_failed_task_is_yielded_with_the_component_name_and_cause(
    backend: ExecutorBackend, store: ArtifactStore, frame: pd.DataFrame
) -> None:
    data = stored_frame(store, frame)
    tasks = [
        spec(store, data, member("good"), ("a", "b")),
        spec(store, data, member("bad_member", LogisticRegression(C=-1.0)), ("a", "b")),
    ]
    got = collect(backend.run(tasks))
    assert isinstance(got["good"], TaskResult)
    error = got["bad_member"]
    assert isinstance(error, Exception)
    assert "bad_member" in str(error)
    assert "'C' parameter" in str(error)  # the remote cause itself
    if backend.name == "ray":
        assert isinstance(error, RunError)
        assert "Remote traceback" in str(error)
        assert "fit_component" in str(error)  # a frame of the worker's stack


def test_cancel_stops_every_unfinished_task(
    backend: ExecutorBackend, store: ArtifactStore, frame: pd.DataFrame
) -> None:
    data = stored_frame(store, frame)
    tasks = [spec(store, data, member("fast"), ("a", "b"))]
    tasks += [spec(store, data, slow(f"slow{i}"), ("a", "b")) for i in range(3)]
    started = time.perf_counter()
    # The slow tasks wait for the fast one: Ray does not start tasks in the order given, and
    # on a loaded machine it started two slow ones first, so "fast" came after a minute.
    submission = backend.submit(tasks, depends=after_fast(tasks))
    outcomes = submission.results()
    seen: dict[str, TaskResult | BaseException] = {}
    for task, outcome in outcomes:
        seen[task.name] = outcome
        if task.name == "fast":
            break
    submission.cancel()
    seen.update(collect(outcomes))
    assert isinstance(seen["fast"], TaskResult)
    for i in range(3):
        error = seen[f"slow{i}"]
        assert isinstance(error, RunError)
        assert f"'slow{i}' was cancelled" in str(error)
    progress = submission.progress()
    assert progress == Progress(total=4, succeeded=1, failed=0, cancelled=3, running=0)
    assert progress.done
    # Far less than the slow tasks would take. Not tighter: Ray's first task on a fresh instance
    # took 56 s on a two-core machine with two busy processes (1.8 s on a quiet one).
    assert time.perf_counter() - started < 300


def test_closing_a_run_early_cancels_what_is_left(
    backend: ExecutorBackend, store: ArtifactStore, frame: pd.DataFrame
) -> None:
    data = stored_frame(store, frame)
    tasks = [spec(store, data, member("fast"), ("a", "b"))]
    tasks += [spec(store, data, slow(f"slow{i}"), ("a", "b")) for i in range(2)]
    # run()'s generator, with the slow tasks held back until "fast" is done (see above).
    outcomes = _run_submission(backend.submit(tasks, depends=after_fast(tasks)))
    first: TaskOutcome = next(iter(outcomes))
    assert first[0].name == "fast"  # slow tasks take ten minutes
    outcomes.close()  # what the runner does when a task failed
    # The workers are free again at once: the slow tasks no longer hold them.
    started = time.perf_counter()
    again = collect(backend.run([spec(store, data, member("after"), ("a", "b"))]))
    assert isinstance(again["after"], TaskResult)
    # Well under the ten minutes the slow tasks would hold the workers. Not tighter: Ray
    # starting a worker for a cancelled one's place took 160 s in a loaded CI run.
    assert time.perf_counter() - started < 300


def test_a_task_graph_fills_upstream_artifacts_and_skips_dependents_of_failures(
    backend: ExecutorBackend, store: ArtifactStore, frame: pd.DataFrame
) -> None:
    data = stored_frame(store, frame)
    scale = Transform("scale", StandardScaler(), ["a", "b"])
    broken = Transform("broken", StandardScaler(with_mean="yes"), ["a"])  # type: ignore[arg-type]
    tasks = [
        spec(store, data, member("on_scale", inputs=("scale",)), ("a", "b"), {"scale": "?"}),
        spec(store, data, scale, ("a", "b")),
        spec(store, data, broken, ("a",)),
        spec(store, data, member("on_broken", inputs=("broken",)), ("a",), {"broken": "?"}),
    ]
    submission = backend.submit(tasks, depends={"on_scale": ["scale"], "on_broken": ["broken"]})
    assert [t.name for t in submission.tasks].index("scale") < [
        t.name for t in submission.tasks
    ].index("on_scale")
    got = collect(submission.results())
    assert isinstance(got["scale"], TaskResult)
    assert isinstance(got["on_scale"], TaskResult), got["on_scale"]
    fitted = load_fitted(store.get(got["on_scale"].artifact))
    assert fitted.info["classes"] == [0, 1]
    assert isinstance(got["broken"], Exception)
    skipped = got["on_broken"]
    assert isinstance(skipped, RunError)
    assert "'on_broken' was not run: 'broken'" in str(skipped)
    assert submission.progress() == Progress(4, succeeded=2, failed=2)


def system(c: float = 1.0) -> System:
    return System(
        "contract",
        target="y",
        components=[
            Transform("scale", StandardScaler(), inputs=["a", "b"]),
            Transform("c_onehot", OneHotEncoder(sparse_output=False), inputs=["c"]),
            Member("lr", LogisticRegression(), inputs=["scale"]),
            Member("lr_c", LogisticRegression(C=c), inputs=["a", "c_onehot"]),
            Ensemble("ensemble", weights={"lr": 1.0, "lr_c": 1.0}),
        ],
    )


def test_a_failed_run_names_the_component_and_resumes_reusing_finished_tasks(
    backend: ExecutorBackend, tmp_path: Path, frame: pd.DataFrame
) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        snap = ws.snapshot(frame, name="contract")
        with pytest.raises(RunError, match="component 'lr_c' failed") as failed:
            ws.train(system(c=-1.0), snap, backend=backend)
        assert "'C' parameter" in str(failed.value)
        finished = {
            v.component
            for n in ("scale", "c_onehot", "lr")
            for v in ws.catalog.component_history("contract", n)
        }
        assert {"scale", "c_onehot"} <= finished  # the first wave finished before lr_c failed
        result = ws.train(system(c=1.0), snap, backend=backend)
        assert set(result.reused) == finished
        assert set(result.trained) == {"lr", "lr_c", "scale", "c_onehot", "ensemble"} - finished
        assert result.version.ref == "contract:v1"


def test_an_interrupted_run_resumes_reusing_every_task_that_finished(
    backend: ExecutorBackend, tmp_path: Path, frame: pd.DataFrame
) -> None:
    def interrupt(event: RunEvent) -> None:
        if event.kind == "finished":
            raise KeyboardInterrupt  # Ctrl-C right after the first task was recorded

    with Workspace.init(tmp_path / "ws") as ws:
        snap = ws.snapshot(frame, name="contract")
        with pytest.raises(KeyboardInterrupt):
            ws.train(system(), snap, backend=backend, progress=interrupt)
        recorded = {
            name for name in system().components if ws.catalog.component_history("contract", name)
        }
        assert len(recorded) == 1
        runs = ws.catalog.list_runs("contract")
        assert [r.status for r in runs] == ["failed"]
        result = ws.train(system(), snap, backend=backend)
        assert set(result.reused) == recorded
        assert len(result.trained) == 4


@pytest.mark.usefixtures("_ray_backend")
def test_ray_refuses_a_task_that_no_node_can_run(store: ArtifactStore, frame: pd.DataFrame) -> None:
    from regrow.run.ray_backend import RayBackend

    greedy = RayBackend(num_gpus=1)  # joins the module's Ray instance, which has no GPU
    task = spec(store, stored_frame(store, frame), member("needs_gpu"), ("a", "b"))
    with pytest.raises(
        ConfigError, match=r"component 'needs_gpu' asks for GPU 1 \(largest node: 0"
    ):
        greedy.submit([task])
    greedy.close()
