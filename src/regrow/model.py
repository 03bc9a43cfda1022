"""A fitted system version, ready to predict on a DataFrame.

Load one with :meth:`regrow.Workspace.load` (``ws.load("churn@champion")``); it holds every
fitted component of the version's manifest and runs the graph: transforms, then members, then
the ensemble.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from regrow.components.base import Ensemble, Member, Transform
from regrow.components.fitted import FittedComponent, combine, member_output
from regrow.data.adapters import Adapters
from regrow.errors import DataError, SystemSpecError
from regrow.system import System

__all__ = ["FittedSystem", "with_own_adapters"]


class FittedSystem:
    """The fitted components of one system version, wired as its graph says."""

    def __init__(
        self,
        spec: Mapping[str, Any],
        components: Mapping[str, FittedComponent],
        *,
        ref: str | None = None,
        artifacts: Mapping[str, str] | None = None,
    ) -> None:
        self.spec = dict(spec)
        #: Component name -> the artifact key it was loaded from (empty when fitted in memory):
        #: what lets members' outputs be cached (:mod:`regrow.components.outputs`).
        self.artifacts: dict[str, str] = dict(artifacts or {})
        self.name: str = spec["name"]
        self.target: str = spec["target"]
        self.task: str = spec["task"]
        self.ref = ref
        self.components = with_own_adapters(spec, components)
        #: The boundary adapters the version was trained with, applied to every frame first.
        self.adapters = Adapters.from_list(spec.get("adapters"))
        self._transforms = {
            n: c for n, c in self.components.items() if isinstance(c.spec, Transform)
        }
        members = [c for c in self.components.values() if isinstance(c.spec, Member)]
        ensembles = [c for c in self.components.values() if isinstance(c.spec, Ensemble)]
        if not members:
            raise SystemSpecError(f"version {ref or self.name!r} has no member to predict with")
        self._members = {c.spec.name: c for c in members}
        self._ensemble = ensembles[0] if ensembles else None
        self._check_gate()
        classes: set[Any] = set()
        for m in members:
            classes.update(m.info.get("classes", []))
        self.classes_: list[Any] | None = (
            sorted(classes) if self.task == "classification" and classes else None
        )

    def __repr__(self) -> str:
        return f"FittedSystem({self.ref or self.name!r}, components={list(self.components)})"

    def definition(self) -> System:
        """The (unfitted) System this version was trained from, rebuilt from its components."""
        spec = self.spec
        system = System(
            spec["name"],
            target=spec["target"],
            task=spec["task"],
            seed=spec["seed"],
            components=[self.components[n].spec for n in spec.get("order") or spec["components"]],
            definition_file="<stored>",  # skips looking up the caller's file (slow)
            adapters=self.adapters,
        )
        # As recorded, even when None (a system built in a notebook): never the caller's file.
        system.definition_file = spec.get("definition_file")
        return system

    def _read_columns(self) -> set[str]:
        """The raw columns the members and transforms read."""
        read: set[str] = set()
        for c in self.components.values():
            if not isinstance(c.spec, Ensemble):
                read.update(i for i in c.spec.inputs if i not in self.components)
        return read

    def _check_gate(self) -> None:
        spec = self._ensemble.spec if self._ensemble is not None else None
        if not isinstance(spec, Ensemble) or spec.method != "gate":
            return
        unread = [c for c in spec.gate_columns if c not in self._read_columns()]
        if unread:
            raise SystemSpecError(
                f"the gate rules of {spec.name!r} read columns {unread} that no member reads",
                hint="rules route by the system's inputs: add the column to a member's inputs "
                f"(the members read {sorted(self._read_columns())})",
            )

    def adapt(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The rows as this version reads them: through its boundary adapters (see
        :mod:`regrow.data.adapters`), checked for every column a component reads."""
        if not isinstance(frame, pd.DataFrame):
            raise DataError(
                f"predict takes a pandas DataFrame (got a {type(frame).__name__})",
                hint="convert it first, e.g. pd.DataFrame(rows)",
            )
        frame = self.adapters.apply(frame)
        missing = sorted(self._read_columns() - set(frame.columns))
        if missing:
            raise DataError(
                f"the data lacks columns {missing} that {self.ref or self.name!r} reads",
                hint=f"it has {list(frame.columns)}"
                + ("" if self.adapters else "; a Rename or Default adapter can bridge a change"),
            )
        return frame

    def _member_output(self, member: FittedComponent, frame: pd.DataFrame) -> np.ndarray:
        return member_output(member, frame, self._transforms, self.classes_)

    def member_outputs(self, frame: pd.DataFrame) -> dict[str, np.ndarray]:
        """Each member's output: class probabilities (classification) or values (regression)."""
        frame = self.adapt(frame)
        return {n: self._member_output(m, frame) for n, m in self._members.items()}

    def _combined(self, frame: pd.DataFrame) -> np.ndarray:
        frame = self.adapt(frame)
        outputs = {n: self._member_output(m, frame) for n, m in self._members.items()}
        if self._ensemble is None:
            return next(iter(outputs.values()))
        return self._combine(outputs, frame)

    def _combine(self, outputs: Mapping[str, np.ndarray], frame: pd.DataFrame | None) -> np.ndarray:
        assert self._ensemble is not None
        spec = self._ensemble.spec
        assert isinstance(spec, Ensemble)
        return combine(spec, outputs, self.classes_, self._ensemble.estimator, frame=frame,
                       upstream=self.components)  # fmt: skip

    @property
    def gated(self) -> bool:
        """Whether the ensemble is a gate: it needs the rows, not only the members' outputs."""
        spec = self._ensemble.spec if self._ensemble is not None else None
        return isinstance(spec, Ensemble) and spec.method == "gate"

    def output_of(
        self, outputs: Mapping[str, np.ndarray], frame: pd.DataFrame | None = None
    ) -> np.ndarray:
        """The system's output from its members' ``outputs``: what :meth:`predict_proba`
        (classification) or :meth:`predict` (regression) returns, without predicting again.

        A gated ensemble also needs the rows' input columns, ``frame`` (see :attr:`gated`)."""
        if self._ensemble is None:
            out = np.asarray(outputs[next(iter(self._members))])
        else:
            if frame is not None and self.gated:
                frame = self.adapters.apply(frame)
            out = self._combine(outputs, frame)
        if self.classes_ is None:
            return out
        total = out.sum(axis=1, keepdims=True)
        return np.asarray(np.divide(out, total, out=np.zeros_like(out), where=total > 0))

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Class probabilities, columns in ``classes_`` order (classification systems)."""
        if self.classes_ is None:
            raise SystemSpecError(
                f"{self.ref or self.name!r} is a {self.task} system: it has no probabilities",
                hint="use predict()",
            )
        out = self._combined(frame)
        total = out.sum(axis=1, keepdims=True)
        return np.asarray(np.divide(out, total, out=np.zeros_like(out), where=total > 0))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Predicted labels (classification) or values (regression)."""
        out = self._combined(frame)
        if self.classes_ is None:
            return out
        return np.asarray(np.asarray(self.classes_)[out.argmax(axis=1)])


def with_own_adapters(
    spec: Mapping[str, Any], components: Mapping[str, FittedComponent]
) -> dict[str, FittedComponent]:
    """``components`` with each one's own adapters as the version's spec records them.

    A version made by adding an adapter to a component reuses the fitted component of its
    parent, whose pickled spec has none: the version's spec is what it reads through. A copy
    is made, so versions that share a fitted component keep their own adapters.
    """
    out = dict(components)
    for name, info in (spec.get("components") or {}).items():
        fitted = out.get(name)
        if fitted is None:
            continue
        have = getattr(fitted.spec, "adapters", None)
        wanted = info.get("adapters") or []
        if (have.to_list() if have else []) != wanted:
            component = copy.copy(fitted.spec)
            component.adapters = Adapters.from_list(wanted)
            out[name] = dataclasses.replace(fitted, spec=component)
    return out
