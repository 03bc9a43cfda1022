"""Attribution: which components of the system graph a drift actually hurts.

Two steps. :func:`readers` maps each drifted feature to the transforms and members that read
it, directly or through transforms. :func:`attribute` then ranks components by **impact**, the
estimated change in loss the drift causes, not by how significant the drift is. For every
member (and the system output) that reads drifted features, it re-estimates the loss on the
window with those features **resampled back to the reference distribution** (the same
reference rows for all of them, so their joint distribution is kept; other columns are left as
they are) and compares with the loss on the window as is:

``impact = loss(window) - loss(window with the drifted features drawn from the reference)``

Row losses come from a loss estimator: for classifiers the expected log loss under CBPE's
calibrated probabilities (:class:`~regrow.monitor.cbpe.CBPE`; per class, one-vs-rest, for
multiclass ones), for regressors the squared
error predicted by :class:`~regrow.monitor.dle.DLE`. The estimator is fitted on the window when
it holds labels (the loss now is then *measured*), otherwise on the reference (*estimated*).
A component is a candidate only when the lower end of its impact's interval is above zero and
the impact exceeds ``margin`` times its loss: a feature that drifted but does not move a
member's loss does not make that member a candidate. A transform's impact is the summed impact,
on the members downstream of it, of the drifted features it reads.

>>> from sklearn.linear_model import LogisticRegression
>>> from sklearn.preprocessing import StandardScaler
>>> from regrow import Ensemble, Member, System, Transform
>>> system = System("s", target="y", components=[
...     Transform("scaled", StandardScaler(), inputs=["a", "b"]),
...     Member("m1", LogisticRegression(), inputs=["scaled"]),
...     Member("m2", LogisticRegression(), inputs=["c"]),
...     Ensemble("e", weights={"m1": 1.0, "m2": 1.0})])
>>> readers(system, ["a", "c", "z"])
{'a': ['scaled', 'm1'], 'c': ['m2'], 'z': []}
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from regrow.components.fitted import member_output
from regrow.components.outputs import OutputsFn, rounded
from regrow.errors import DataError
from regrow.monitor.cbpe import CBPE, Support
from regrow.monitor.dle import DLE
from regrow.monitor.sample import sample_rows
from regrow.system import System

if TYPE_CHECKING:
    from regrow.model import FittedSystem
    from regrow.progress import StepHandle

__all__ = ["ComponentImpact", "OutputsFn", "attribute", "readers"]

Array = np.ndarray
RowLoss = Callable[[pd.DataFrame, Array], Array]


@dataclass(frozen=True)
class ComponentImpact:
    """How much the drift changed one component's loss, and whether that makes it a candidate."""

    component: str
    kind: str
    features: tuple[str, ...]
    loss_now: float
    loss_counterfactual: float
    impact: float
    interval: tuple[float, float]
    candidate: bool
    why: str

    def to_dict(self) -> dict[str, Any]:
        """The impact as JSON-ready values (NaN becomes None)."""
        d = asdict(self)
        d["features"] = list(self.features)
        d["interval"] = [None if not np.isfinite(v) else v for v in self.interval]
        for k in ("loss_now", "loss_counterfactual", "impact"):
            d[k] = None if not np.isfinite(d[k]) else d[k]
        return d


def _graph(system: System | FittedSystem | Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    if isinstance(system, System):
        spec: Mapping[str, Any] = system.spec()
    elif isinstance(system, Mapping):
        spec = system
    else:
        spec = system.spec
    components = {str(n): dict(c) for n, c in spec["components"].items()}
    position = {n: i for i, n in enumerate(spec.get("order", sorted(components)))}
    depth: dict[str, int] = {}

    def visit(n: str) -> int:
        if n not in depth:
            ups = [i for i in components[n]["inputs"] if i in components]
            depth[n] = 1 + max((visit(u) for u in ups), default=-1)
        return depth[n]

    ordered = sorted(components, key=lambda n: (visit(n), position.get(n, len(position)), n))
    return {n: components[n] for n in ordered}


def _raw_columns(graph: Mapping[str, Mapping[str, Any]], name: str) -> set[str]:
    cols: set[str] = set()
    for i in graph[name]["inputs"]:
        cols |= _raw_columns(graph, i) if i in graph else {i}
    return cols


def readers(
    system: System | FittedSystem | Mapping[str, Any], features: Iterable[str]
) -> dict[str, list[str]]:
    """For each feature, the transforms and members that read it, directly or through transforms.

    ``system`` is a :class:`~regrow.System`, a fitted version, or a version's stored spec.
    """
    graph = _graph(system)
    reads = {n: _raw_columns(graph, n) for n, c in graph.items() if c["kind"] != "ensemble"}
    return {f: [n for n, cols in reads.items() if f in cols] for f in features}


def _loss_model(
    task: str, score: Array, labels: Array, features: pd.DataFrame, seed: int
) -> RowLoss:
    """A function (features, output) -> row loss, fitted on labelled rows."""
    if task == "classification":
        if score.ndim == 2 and score.shape[1] > 2:  # one column per class, labels index them
            k = score.shape[1]
            multi = CBPE(metrics=("accuracy",), seed=seed).fit(score, labels, classes=range(k))

            def multiclass_loss(_: pd.DataFrame, out: Array) -> Array:
                return multi.expected_row_log_loss(out)

            return multiclass_loss
        cbpe = CBPE(metrics=("accuracy",), seed=seed).fit(score[:, -1], labels)

        def class_loss(_: pd.DataFrame, out: Array) -> Array:
            return cbpe.expected_row_log_loss(out[:, -1])

        return class_loss
    dle = DLE("rmse", seed=seed).fit(features, score, np.asarray(labels, float))
    return dle.row_loss


def _loss_models(
    model: FittedSystem,
    frame: pd.DataFrame,
    columns: Mapping[str, list[str]],
    seed: int,
    outputs: OutputsFn,
) -> dict[str, RowLoss]:
    outs = _outputs(model, frame, outputs)
    labels = _encode(model, frame[model.target])
    return {
        n: _loss_model(model.task, outs[n], labels, frame[cols], seed)
        for n, cols in columns.items()
    }


def _reference_loss_models(
    model: FittedSystem,
    reference: Callable[[], pd.DataFrame],
    columns: Mapping[str, list[str]],
    seed: int,
    outputs: OutputsFn,
    key: Hashable | None,
) -> dict[str, RowLoss]:
    """The loss models fitted on the reference rows ``reference()`` makes; with ``key`` (the
    reference's identity and what the fit depends on), each is kept for the process
    (:data:`regrow.monitor.shared.LOSS_MODELS`) and the rows are made only for one missing."""
    if key is None:
        return _loss_models(model, reference(), columns, seed, outputs)
    from regrow.monitor.shared import LOSS_MODELS

    made: dict[str, RowLoss] = {}

    def make_all() -> dict[str, RowLoss]:
        if not made:  # one fit of every missing model, on one prediction of the members
            made.update(_loss_models(model, reference(), columns, seed, outputs))
        return made

    def made_for(name: str) -> Callable[[], RowLoss]:
        return lambda: make_all()[name]

    return {
        n: LOSS_MODELS.get(("loss model", key, model.task, n, tuple(cols), seed), made_for(n))
        for n, cols in columns.items()
    }


def _measured(task: str, out: Array, labels: Array) -> Array:
    if task == "classification" and out.ndim == 2 and out.shape[1] > 2:
        p = np.clip(out[np.arange(len(out)), np.asarray(labels, int)], 1e-15, 1.0)
        return np.asarray(-np.log(p))
    if task == "classification":
        p = np.clip(out[:, -1], 1e-15, 1 - 1e-15)
        return np.asarray(-np.where(labels == 1, np.log(p), np.log(1 - p)))
    return np.asarray((labels - out) ** 2)


def _outputs(model: FittedSystem, frame: pd.DataFrame, outputs: OutputsFn) -> dict[str, Array]:
    """Each member's output and the system's (combined from them, not predicted again)."""
    outs = dict(outputs(frame))
    outs[model.name] = model.output_of(outs, frame)
    return outs


def _predicted(model: FittedSystem) -> OutputsFn:
    """Members' outputs predicted now (no caller keeps them)."""
    return model.member_outputs


@dataclass
class _Context:
    """What every counterfactual of one attribution shares.

    Each set of features drawn back from the reference is drawn once (``n_repeats`` times)
    for every component that reads it; only the members that read one of those features are
    predicted again on a draw, the others keep their output on the window, and the system's
    output is combined from the members'. A member's output on a draw depends only on the
    drawn features it reads, so it is predicted once per (those features, draw): the system's
    draw of every drifted feature reuses each member's draw of its own.
    """

    model: FittedSystem
    reference: pd.DataFrame
    window: pd.DataFrame
    draws: list[Array]
    loss_fns: dict[str, RowLoss]
    columns: dict[str, list[str]]
    now: dict[str, Array]
    reads: dict[str, set[str]]
    step: StepHandle | None = None
    _done: dict[tuple[str, ...], list[tuple[pd.DataFrame, dict[str, Array]]]] = field(
        default_factory=dict
    )
    _member_draws: dict[tuple[str, tuple[str, ...], int], Array] = field(default_factory=dict)

    def _drawn(self, subset: tuple[str, ...]) -> list[tuple[pd.DataFrame, dict[str, Array]]]:
        if subset not in self._done:
            model = self.model
            members = [n for n in self.reads if n != model.name]
            moved = [m for m in members if self.reads[m] & set(subset)]
            transforms = {n: c for n, c in model.components.items() if c.spec.kind == "transform"}
            runs = []
            for k, idx in enumerate(self.draws):
                cf = self.window.copy()
                for col in subset:  # column by column, so each keeps its dtype
                    cf[col] = self.reference[col].to_numpy()[idx]
                outs = {m: self.now[m] for m in members}
                for m in moved:
                    key = (m, tuple(c for c in subset if c in self.reads[m]), k)
                    if key not in self._member_draws:
                        fc = model.components[m]
                        out = member_output(fc, cf, transforms, model.classes_)
                        self._member_draws[key] = rounded(out)
                    outs[m] = self._member_draws[key]
                outs[model.name] = model.output_of(outs, cf)
                runs.append((cf, outs))
                if self.step is not None:
                    self.step.advance()
            self._done[subset] = runs
        return self._done[subset]

    def counterfactual(self, subset: list[str], names: list[str]) -> dict[str, Array]:
        """Row losses of ``names`` with ``subset`` drawn from the reference, mean over draws."""
        losses: dict[str, list[Array]] = {n: [] for n in names}
        for cf, outs in self._drawn(tuple(sorted(subset))):
            for n in names:
                losses[n].append(self.loss_fns[n](cf[self.columns[n]], outs[n]))
        return {n: np.mean(v, axis=0) for n, v in losses.items()}


@dataclass(frozen=True)
class _Verdict:
    """How impacts become candidates and explanations."""

    effects: dict[str, float | None]
    source: str
    level: float
    margin: float
    outside: dict[str, float]

    def judge(
        self, name: str, kind: str, feats: list[str], d: Array, loss: float
    ) -> ComponentImpact:
        impact = float(d.mean())
        z = float(norm.ppf(0.5 + self.level / 2))
        half = z * float(d.std(ddof=1)) / np.sqrt(len(d)) if len(d) > 1 else float("nan")
        low, high = impact - half, impact + half
        candidate = bool(low > 0 and impact > self.margin * abs(loss))
        shown = ", ".join(
            f"{f!r}" + (f" (effect {e:.3g})" if (e := self.effects[f]) is not None else "")
            for f in feats
        )
        verdict = (
            "candidate"
            if candidate
            else f"not a candidate: the change is within noise or below {self.margin:.0%} of "
            "its loss"
        )
        why = (
            f"reads drifted {shown}; drawing them from the reference moves its {self.source} "
            f"loss {loss:.4g} by {-impact:+.4g} (impact {impact:+.4g}, "
            f"{self.level:.0%} interval [{low:+.4g}, {high:+.4g}]): {verdict}"
        )
        far = {f: self.outside[f] for f in feats if self.outside.get(f, 0.0) > 0.05}
        if far and self.source == "estimated":
            why += (
                "; caution: "
                + ", ".join(f"{v:.0%} of {f!r}" for f, v in far.items())
                + " lie outside the reference range, where the estimated loss extrapolates "
                "and a change in the target relation cannot be seen without labels"
            )
        return ComponentImpact(
            name, kind, tuple(feats), loss, loss - impact, impact, (low, high), candidate, why
        )


def attribute(
    model: FittedSystem,
    reference: pd.DataFrame,
    window: pd.DataFrame,
    drifted: Iterable[str] | Mapping[str, float],
    *,
    n_repeats: int = 5,
    margin: float = 0.01,
    level: float = 0.95,
    seed: int = 0,
    outputs: OutputsFn | None = None,
    reference_outputs: OutputsFn | None = None,
    fit_rows: int | None = None,
    step: StepHandle | None = None,
    reference_key: Hashable | None = None,
) -> list[ComponentImpact]:
    """Rank the components of ``model`` by the loss the drift of ``drifted`` costs them.

    ``reference`` holds labelled reference rows (the target column); ``window`` the current
    rows, which count as labelled when every row has the target. ``drifted`` names the
    drifted columns, optionally with effect sizes (shown in ``why``). Losses are log loss
    (classification) or squared error (regression), per row, averaged. The interval
    is the normal interval of the mean paired row difference, at ``level``, averaged over
    ``n_repeats`` reference resamples. Members that read no drifted feature are listed with
    zero impact; the system output is kind "system".

    ``outputs`` and ``reference_outputs`` give the members' outputs on rows of the window
    and of the reference when the caller keeps them (:class:`regrow.cache.OutputCache`);
    by default they are predicted. Loss estimators fitted on the reference use at most
    ``fit_rows`` of its rows (a seeded sample, stratified by label). ``step`` is advanced
    once per draw. With ``reference_key``, which must identify the reference's rows and the
    model (its snapshot and version), the loss models fitted on the reference are kept for
    the process (:data:`regrow.monitor.shared.LOSS_MODELS`, keyed by it, the reference's
    columns and rows, ``seed``, ``fit_rows``, each component and its columns): the next window
    with the same reference fits none of them again, and gets the same numbers.
    """
    effects: dict[str, float | None] = (
        {f: float(v) for f, v in drifted.items()}
        if isinstance(drifted, Mapping)
        else dict.fromkeys(drifted)
    )
    _check(model, reference, window, effects)
    graph = _graph(model)
    labelled = bool(model.target in window.columns and window[model.target].notna().all())
    window = window.reset_index(drop=True)
    on_window = outputs or _predicted(model)
    on_reference = reference_outputs or _predicted(model)
    by = model.target if model.task == "classification" else None

    def reference_fit() -> pd.DataFrame:
        if fit_rows is None:
            return reference
        return sample_rows(reference, fit_rows, by=by, seed=seed)

    fit_key = (
        None
        if reference_key is None
        else (reference_key, tuple(reference.columns), len(reference), fit_rows)
    )
    reads = {n: _raw_columns(graph, n) for n, c in graph.items() if c["kind"] == "member"}
    reads[model.name] = set().union(*reads.values())
    columns = {n: sorted(cols) for n, cols in reads.items()}
    # With labels the loss now is measured: a loss estimator is needed only where a drifted
    # feature is drawn back, by the components that read one.
    estimated = {n: cols for n, cols in columns.items() if not labelled or reads[n] & set(effects)}
    try:
        loss_fns = (
            _loss_models(model, window, estimated, seed, on_window)
            if labelled
            else _reference_loss_models(
                model, reference_fit, estimated, seed, on_reference, fit_key
            )
        )
    except DataError:
        if not labelled:
            raise
        # Too few labelled window rows (or one class) to fit on: the loss now is still
        # measured, the counterfactual's is estimated from the reference.
        loss_fns = _reference_loss_models(
            model, reference_fit, estimated, seed, on_reference, fit_key
        )
    outs_now = _outputs(model, window, on_window)
    now = {n: loss_fns[n](window[columns[n]], outs_now[n]) for n in estimated}
    if labelled:
        y_now = _encode(model, window[model.target])
        loss_now = {n: float(_measured(model.task, outs_now[n], y_now).mean()) for n in reads}
    else:
        loss_now = {n: float(now[n].mean()) for n in reads}
    rng = np.random.default_rng(seed)
    draws = [rng.integers(0, len(reference), len(window)) for _ in range(n_repeats)]
    ctx = _Context(model, reference, window, draws, loss_fns, columns, outs_now, reads, step)
    feats_all = sorted(effects)
    if step is not None:
        subsets = {tuple(f for f in feats_all if f in cols) for cols in reads.values()}
        subsets |= {
            tuple(f for f in feats_all if f in _raw_columns(graph, n))
            for n, c in graph.items()
            if c["kind"] == "transform"
        }
        step.total = n_repeats * len([s for s in subsets if s])
    _, outside = Support.of(reference[feats_all]).outside(window[feats_all])
    verdict = _Verdict(effects, "measured" if labelled else "estimated", level, margin, outside)
    results: list[ComponentImpact] = []
    for name in reads:
        kind = "system" if name == model.name else "member"
        feats = [f for f in feats_all if f in reads[name]]
        if not feats:
            loss = loss_now[name]
            why = "reads none of the drifted features"
            results.append(ComponentImpact(name, kind, (), loss, loss, 0.0, (0.0, 0.0), False, why))
            continue
        cf = ctx.counterfactual(feats, [name])[name]
        results.append(verdict.judge(name, kind, feats, now[name] - cf, loss_now[name]))
    for name, spec in graph.items():
        feats = [f for f in feats_all if f in _raw_columns(graph, name)]
        members = [m for m in reads if m != model.name and _reads_through(graph, m, name)]
        if spec["kind"] != "transform" or not feats or not members:
            continue
        cfs = ctx.counterfactual(feats, members)
        d = np.sum([now[m] - cfs[m] for m in members], axis=0)
        loss = float(sum(loss_now[m] for m in members))
        results.append(verdict.judge(name, "transform", feats, d, loss))
    return sorted(results, key=lambda r: (not r.candidate, -r.impact, r.component))


def _check(
    model: FittedSystem,
    reference: pd.DataFrame,
    window: pd.DataFrame,
    effects: Mapping[str, float | None],
) -> None:
    unknown = sorted(f for f in effects if f not in reference.columns)
    if unknown:
        raise DataError(
            f"drifted features {unknown} are not columns of the reference",
            hint="resampling back to the reference needs their reference values",
        )
    missing = sorted(f for f in effects if f not in window.columns)
    if missing:
        raise DataError(f"drifted features {missing} are not columns of the window")
    if model.target not in reference.columns:
        raise DataError(
            f"the reference has no target column {model.target!r}",
            hint="the loss estimators are fitted on labelled reference rows",
        )
    if len(window) == 0:
        raise DataError("the window is empty: there is nothing to attribute")


def _reads_through(graph: Mapping[str, Mapping[str, Any]], name: str, transform: str) -> bool:
    inputs = graph[name]["inputs"]
    return transform in inputs or any(
        i in graph and _reads_through(graph, i, transform) for i in inputs
    )


def _encode(model: FittedSystem, y: pd.Series) -> Array:
    if model.classes_ is None:
        return np.asarray(y, float)
    index = pd.Index(model.classes_).get_indexer(y)
    if (index < 0).any():
        raise DataError(
            f"target {model.target!r} holds classes the model never saw",
            hint=f"its classes are {model.classes_}",
        )
    return np.asarray(index)
