"""Gated ensembles: each row's output comes from the member a rule or a learned gate picks.

Two kinds of gate (see docs/gating.md):

* **rules** -- ``gates={member: "pandas query expression"}``, tried in order; a row goes to the
  first member whose expression is true on the system's input columns, else to ``default``.
  The expressions are the snapshot slices' (:func:`regrow.data.snapshot.apply_slice`).
* **learned** -- a small classifier on the members' numeric inputs, fitted on cross-fitted
  member outputs to tell which member is best for a row. At predict time the members are
  *blended* by the gate's probabilities (soft gating, a mixture of experts): where the gate is
  unsure the blend tends to the mean, which costs little; a hard switch would pay the full
  loss of every wrong pick.

>>> import pandas as pd
>>> rule_columns("region == 'north' and `unit price` > 3")
['region', 'unit price']
>>> frame = pd.DataFrame({"age": [10, 40, 70]})
>>> routes(frame, (("young", "age < 18"), ("old", "age >= 65")), ("young", "old", "adult"),
...        default="adult").tolist()
[0, 2, 1]
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from regrow._threads import small_data_threads
from regrow.errors import ComponentError, DataError, SystemSpecError

if TYPE_CHECKING:
    from regrow.components.base import Ensemble

__all__ = ["LearnedGate", "fit_gate", "gated", "routes", "row_losses", "rule_columns"]

_BACKTICKED = re.compile(r"`([^`]*)`")
_RULE_HINT = (
    "a gate rule is a pandas query expression over the columns the system reads, e.g. "
    "\"region == 'north' and age >= 18\" (put names with spaces in `backticks`)"
)
_EPS = 1e-6


def rule_columns(expression: str, *, member: str = "?") -> list[str]:
    """The column names a rule ``expression`` reads, in order of appearance.

    Raises :class:`~regrow.errors.SystemSpecError` when it is no expression pandas could
    evaluate: not a string, empty, a syntax error, or an ``@variable`` (rules see columns only).
    """
    if not isinstance(expression, str) or not expression.strip():
        raise SystemSpecError(
            f"the gate rule of {member!r} must be a non-empty expression (got {expression!r})",
            hint=_RULE_HINT,
        )
    quoted: list[str] = []

    def placeholder(match: re.Match[str]) -> str:
        quoted.append(match.group(1))
        return f"__bt{len(quoted) - 1}__"

    plain = _BACKTICKED.sub(placeholder, expression)
    try:
        tree = ast.parse(plain.strip(), mode="eval")
    except SyntaxError as exc:
        raise SystemSpecError(
            f"the gate rule of {member!r} ({expression!r}) does not parse: {exc.msg}",
            hint=_RULE_HINT + "; rules see columns only, no @variables",
        ) from None
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            name = node.id
            found = re.fullmatch(r"__bt(\d+)__", name)
            name = quoted[int(found.group(1))] if found else name
            if name not in names:
                names.append(name)
    return names


def routes(
    frame: pd.DataFrame,
    gates: Sequence[tuple[str, str]],
    members: Sequence[str],
    *,
    default: str | None,
    ensemble: str = "gate",
) -> np.ndarray:
    """The position in ``members`` of the member each row of ``frame`` goes to.

    ``gates`` are (member, expression) pairs, tried in order; rows no rule takes go to
    ``default``. Rows left without a member raise :class:`~regrow.errors.DataError`.
    """
    from regrow.data.snapshot import apply_slice

    plain = frame.reset_index(drop=True)
    route = np.full(len(plain), -1, dtype=np.int64)
    for member, expression in gates:
        taken = apply_slice(plain, f"{ensemble}:{member}", expression).index.to_numpy()
        free = taken[route[taken] < 0]
        route[free] = list(members).index(member)
    if default is not None:
        route[route < 0] = list(members).index(default)
    left = np.flatnonzero(route < 0)
    if len(left):
        raise DataError(
            f"gated ensemble {ensemble!r}: {len(left)} of {len(route)} row(s) match no rule "
            f"(first at position {int(left[0])}) and there is no default member",
            hint="add default=<member> to the Ensemble, or a rule that takes these rows",
        )
    return route


def row_losses(output: np.ndarray, y: np.ndarray, classes: Sequence[Any] | None) -> np.ndarray:
    """Each row's loss: squared error of values, or log loss of probabilities.

    >>> row_losses(np.array([1.0, 3.0]), np.array([1.0, 1.0]), None).tolist()
    [0.0, 4.0]
    """
    if classes is None:
        return np.asarray((np.asarray(output, dtype=float) - y.astype(float)) ** 2)
    column = pd.Index(list(classes)).get_indexer(y)
    if (column < 0).any():
        raise DataError(
            f"labels {sorted(set(np.asarray(y)[column < 0].tolist()))} are none of the "
            f"members' classes {list(classes)}",
            hint="train the members on rows with every label",
        )
    p = np.clip(output[np.arange(len(y)), column], _EPS, 1.0)
    return np.asarray(-np.log(p))


class LearnedGate:
    """The fitted gate of a ``gate="learned"`` ensemble: member weights per row.

    ``classifier`` predicts the best member's position from the ``columns`` of a row; when the
    training rows named one member only, ``constant`` holds fixed weights instead.
    """

    def __init__(
        self,
        members: Sequence[str],
        columns: Sequence[str],
        classifier: Any = None,
        constant: np.ndarray | None = None,
    ) -> None:
        self.members = tuple(members)
        self.columns = list(columns)
        self.classifier = classifier
        self.constant = constant

    def __repr__(self) -> str:
        how = type(self.classifier).__name__ if self.classifier is not None else "constant"
        return f"LearnedGate({list(self.members)!r}, {how}, columns={self.columns!r})"

    def weights(self, features: pd.DataFrame) -> np.ndarray:
        """The weight of each member (columns in ``members`` order) on each row; rows sum to 1."""
        if self.constant is not None:
            return np.tile(self.constant, (len(features), 1))
        missing = [c for c in self.columns if c not in features.columns]
        if missing:
            raise DataError(
                f"the learned gate reads columns {missing} the data does not have",
                hint=f"it was fitted on {self.columns}",
            )
        proba = np.asarray(self.classifier.predict_proba(features[self.columns]), dtype=float)
        out = np.zeros((len(features), len(self.members)))
        out[:, np.asarray(self.classifier.classes_, dtype=int)] = proba
        return out


def numeric_columns(frames: Sequence[pd.DataFrame]) -> pd.DataFrame:
    """The numeric and boolean columns of ``frames`` side by side, each name once."""
    seen: dict[str, pd.Series] = {}
    for frame in frames:
        for name in frame.columns:
            col = frame[name]
            if name not in seen and (
                pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)
            ):
                seen[str(name)] = col.astype(float)
    index = frames[0].index if frames else None
    return pd.DataFrame(seen, index=index)


def fit_gate(
    members: Sequence[str],
    outputs: Mapping[str, np.ndarray],
    features: pd.DataFrame,
    y: np.ndarray,
    classes: Sequence[Any] | None,
    *,
    seed: int,
    ensemble: str = "gate",
) -> LearnedGate:
    """Fit the gate that predicts, from ``features``, which member has the lowest loss.

    ``outputs`` are the members' out-of-sample outputs on the rows. Each row is labelled with
    its best member and weighted by its regret (the worst member's loss minus the best's), so
    rows where the members agree teach the gate nothing and rows where the pick matters most
    count most.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    if features.shape[1] == 0:
        raise ComponentError(
            f"learned gate {ensemble!r}: its members read no numeric column to route by",
            hint="give a member a numeric input (or a transform that encodes one), or use rule "
            "gates: gates={member: expression}",
        )
    losses = np.column_stack([row_losses(outputs[m], y, classes) for m in members])
    best = losses.argmin(axis=1)
    regret = losses.max(axis=1) - losses.min(axis=1)
    useful = regret > 0
    labels = np.unique(best[useful])
    if len(labels) < 2:
        constant = np.full(len(members), 1.0 / len(members))
        if len(labels) == 1:
            constant = np.eye(len(members))[labels[0]]
        return LearnedGate(members, list(features.columns), constant=constant)
    classifier = HistGradientBoostingClassifier(
        max_iter=100,
        learning_rate=0.1,
        max_leaf_nodes=15,
        min_samples_leaf=20,
        early_stopping=False,
        random_state=seed,
    )
    with small_data_threads(int(useful.sum())):
        classifier.fit(features[useful], best[useful], sample_weight=regret[useful] / regret.mean())
    return LearnedGate(members, list(features.columns), classifier=classifier)


def gated(
    ensemble: Ensemble,
    outputs: Mapping[str, np.ndarray],
    gate: Any,
    frame: pd.DataFrame | None,
    features: pd.DataFrame | None,
) -> np.ndarray:
    """Each row's output from the member its rule picks, or the learned ``gate``'s blend.

    ``frame`` holds the rows' raw input columns, ``features`` the learned gate's inputs.
    """
    learned = ensemble.gate == "learned"
    if frame is None or (learned and features is None):
        raise ComponentError(
            f"gated ensemble {ensemble.name!r} routes rows by their columns, and was given "
            "member outputs only",
            hint="predict through the fitted system (FittedSystem.predict), which passes the rows",
        )
    stacked = np.stack([np.asarray(outputs[m], dtype=float) for m in ensemble.members])
    if learned:
        if not isinstance(gate, LearnedGate):
            raise ComponentError(f"learned gate {ensemble.name!r} is not fitted")
        assert features is not None
        weights = gate.weights(features)
        return np.asarray(np.einsum("rk,kr...->r...", weights, stacked))
    route = routes(frame, ensemble.gates, ensemble.members, default=ensemble.default,
                   ensemble=ensemble.name)  # fmt: skip
    return np.asarray(stacked[route, np.arange(len(route))])
