"""The System graph: named components wired into a DAG that turns a row into a prediction.

>>> from sklearn.linear_model import LogisticRegression
>>> from sklearn.preprocessing import StandardScaler
>>> from regrow import Ensemble, Member, System, Transform
>>> system = System(
...     "churn",
...     target="churned",
...     components=[
...         Transform("usage_scaled", StandardScaler(), inputs=["sessions", "minutes"]),
...         Member("usage", LogisticRegression(), inputs=["usage_scaled"]),
...         Member("account", LogisticRegression(), inputs=["tenure"]),
...         Ensemble("ensemble", weights={"usage": 0.5, "account": 0.5}),
...     ],
... )
>>> system.order()
['usage_scaled', 'account', 'usage', 'ensemble']
>>> sorted(system.raw_columns("usage"))
['minutes', 'sessions']
>>> system.downstream("usage_scaled")
['usage', 'ensemble']
>>> system.validate(columns=["sessions", "minutes", "tenure", "churned"])
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

from regrow._modules import is_installed_code
from regrow.components.base import Component, Ensemble, Member
from regrow.errors import SystemSpecError

__all__ = ["System", "Task"]

Task = Literal["classification", "regression"]


def _caller_file() -> str | None:
    """The source file of the first caller that is user code.

    regrow's own modules, installed packages and the standard library are skipped (regrow's
    demo builds a system like a user would, so it counts). In a REPL or a notebook there is
    no such file: None.
    """
    here = Path(__file__).resolve().parent
    for frame_info in inspect.stack(context=0)[2:]:
        path = Path(frame_info.filename)
        if not path.is_file():
            continue
        resolved = path.resolve()
        if is_installed_code(resolved):
            continue
        if (here == resolved.parent or here in resolved.parents) and resolved.name != "demo.py":
            continue
        return str(resolved)
    return None


class System:
    """A named DAG of transforms, members and at most one ensemble.

    Parameters are stored as given. ``definition_file`` is the module that builds the system
    (found automatically), recorded for lineage and the run's environment (its git commit).
    Its source is not part of any fingerprint: each component's code part covers only the
    user code that component reaches (see :mod:`regrow.fingerprint`).
    """

    def __init__(
        self,
        name: str,
        *,
        target: str,
        task: Task = "classification",
        components: Iterable[Component] = (),
        seed: int = 0,
        definition_file: str | None = None,
        adapters: Iterable[Any] = (),
    ) -> None:
        from regrow.components.base import _check_name
        from regrow.data.adapters import Adapters

        self.name = _check_name(name, "system")
        if not isinstance(target, str) or not target:
            raise SystemSpecError(
                f"system {name!r} has no target (got {target!r})",
                hint="pass target='<label column>'",
            )
        if task not in ("classification", "regression"):
            raise SystemSpecError(
                f"unknown task {task!r} for system {name!r}",
                hint="use 'classification' or 'regression'",
            )
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise SystemSpecError(f"seed must be an int (got {seed!r})")
        self.target = target
        self.task: Task = task
        self.seed = seed
        self.definition_file = definition_file or _caller_file()
        #: The boundary adapters every row passes through before any component reads it
        #: (:mod:`regrow.data.adapters`).
        self.adapters = adapters if isinstance(adapters, Adapters) else Adapters(adapters)
        self._components: dict[str, Component] = {}
        for component in components:
            self.add(component)
        self._check_gate()

    # -- building ---------------------------------------------------------------------------

    def add(self, component: Component) -> System:
        """Add a component; names must be unique within the system. Returns the system."""
        if not isinstance(component, Component):
            raise SystemSpecError(
                f"{component!r} is not a component",
                hint="wrap estimators in Transform(...), Member(...) or Ensemble(...)",
            )
        if component.name in self._components:
            raise SystemSpecError(
                f"system {self.name!r} already has a component named {component.name!r}",
                hint="give every component a unique name",
            )
        if component.name == self.target:
            raise SystemSpecError(
                f"component {component.name!r} has the name of the target column",
                hint="rename the component",
            )
        if isinstance(component, Ensemble) and self.ensemble is not None:
            raise SystemSpecError(
                f"system {self.name!r} already has ensemble {self.ensemble.name!r}",
                hint="a system has at most one ensemble",
            )
        self._components[component.name] = component
        return self

    def _check_gate(self) -> None:
        """A gate's rules read columns the members read: requests carry only those."""
        ens = self.ensemble
        if ens is None or not ens.gate_columns:
            return
        read = {c for comp in self._components.values() for c in self.direct_columns(comp.name)}
        unread = [c for c in ens.gate_columns if c not in read or c == self.target]
        if unread:
            raise SystemSpecError(
                f"the gate of ensemble {ens.name!r} reads {unread}, which no member or "
                "transform reads",
                hint="gate on columns the members read (requests carry only those), or add "
                "the column to a member's inputs",
            )

    def replace(self, component: Component) -> System:
        """A copy of the system with ``component`` replacing the one of the same name."""
        if component.name not in self._components:
            raise SystemSpecError(
                f"system {self.name!r} has no component {component.name!r} to replace",
                hint=_close_hint(component.name, self._components),
            )
        comps = [component if c.name == component.name else c for c in self._components.values()]
        return System(
            self.name,
            target=self.target,
            task=self.task,
            components=comps,
            seed=self.seed,
            definition_file=self.definition_file,
            adapters=self.adapters,
        )

    def with_adapters(self, adapters: Iterable[Any]) -> System:
        """A copy of the system reading its rows through ``adapters`` (replacing its own;
        see :mod:`regrow.data.adapters`).

        >>> from regrow.data.adapters import Rename
        >>> renamed = System("s", target="y").with_adapters([Rename("plan", source="tier")])
        >>> renamed.spec()["adapters"]
        [{'kind': 'rename', 'column': 'plan', 'source': 'tier'}]
        """
        copy = System(
            self.name,
            target=self.target,
            task=self.task,
            components=self._components.values(),
            seed=self.seed,
            definition_file=self.definition_file,
            adapters=adapters,
        )
        copy.definition_file = self.definition_file
        return copy

    # -- reading ------------------------------------------------------------------------------

    @property
    def components(self) -> dict[str, Component]:
        """The components by name, in the order they were added."""
        return dict(self._components)

    def __getitem__(self, name: str) -> Component:
        try:
            return self._components[name]
        except KeyError:
            raise SystemSpecError(
                f"system {self.name!r} has no component {name!r}",
                hint=_close_hint(name, self._components),
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._components

    def __len__(self) -> int:
        return len(self._components)

    @property
    def ensemble(self) -> Ensemble | None:
        """The system's ensemble, if it has one."""
        for c in self._components.values():
            if isinstance(c, Ensemble):
                return c
        return None

    @property
    def members(self) -> list[Member]:
        """The members, in order."""
        return [c for c in self._components.values() if isinstance(c, Member)]

    @property
    def output(self) -> Component:
        """The component whose output is the system's prediction."""
        ens = self.ensemble
        if ens is not None:
            return ens
        members = self.members
        if len(members) != 1:
            raise SystemSpecError(
                f"system {self.name!r} has {len(members)} members and no ensemble",
                hint="add an Ensemble(...) to combine them",
            )
        return members[0]

    def upstream(self, name: str) -> list[str]:
        """The components ``name`` reads directly."""
        return [i for i in self[name].inputs if i in self._components]

    def ancestors(self, name: str) -> list[str]:
        """Every component ``name`` depends on, directly or not, in graph order."""
        seen: set[str] = set()
        stack = list(self.upstream(name))
        while stack:
            n = stack.pop()
            if n not in seen:
                seen.add(n)
                stack.extend(self.upstream(n))
        return [n for n in self.order() if n in seen]

    def downstream(self, name: str) -> list[str]:
        """Every component that depends on ``name``, directly or not, in graph order."""
        self[name]
        affected = {name}
        result = []
        for n in self.order():
            if n != name and any(u in affected for u in self.upstream(n)):
                affected.add(n)
                result.append(n)
        return result

    def raw_columns(self, name: str) -> set[str]:
        """The data columns ``name`` reads, directly or through transforms."""
        cols = {i for i in self[name].inputs if i not in self._components}
        for up in self.upstream(name):
            cols |= self.raw_columns(up)
        return cols

    def direct_columns(self, name: str) -> list[str]:
        """The data columns ``name`` reads itself (not through transforms)."""
        return [i for i in self[name].inputs if i not in self._components]

    def columns(self) -> set[str]:
        """Every data column the system reads, plus the target."""
        cols = {self.target}
        for c in self._components.values():
            cols |= set(self.direct_columns(c.name))
        return cols

    def order(self) -> list[str]:
        """Components in topological order (ties broken by depth, then insertion order)."""
        self._check_graph()
        depth: dict[str, int] = {}

        def visit(n: str) -> int:
            if n not in depth:
                ups = self.upstream(n)
                depth[n] = 1 + max((visit(u) for u in ups), default=-1)
            return depth[n]

        for n in self._components:
            visit(n)
        position = {n: i for i, n in enumerate(self._components)}
        return sorted(self._components, key=lambda n: (depth[n], position[n]))

    def levels(self) -> list[list[str]]:
        """Components grouped in waves that can run in parallel (each reads only earlier waves)."""
        waves: list[list[str]] = []
        level: dict[str, int] = {}
        for n in self.order():
            lv = 1 + max((level[u] for u in self.upstream(n)), default=-1)
            level[n] = lv
            if lv == len(waves):
                waves.append([])
            waves[lv].append(n)
        return waves

    # -- validation ---------------------------------------------------------------------------

    def _check_graph(self) -> None:
        state: dict[str, int] = {}  # 1 = visiting, 2 = done

        def visit(n: str, path: list[str]) -> None:
            if state.get(n) == 2:
                return
            if state.get(n) == 1:
                cycle = [*path[path.index(n) :], n]
                raise SystemSpecError(
                    f"system {self.name!r} has a cycle: {' -> '.join(cycle)}",
                    hint="a component cannot read its own output, directly or through others",
                )
            state[n] = 1
            for u in self.upstream(n):
                visit(u, [*path, n])
            state[n] = 2

        for n in self._components:
            visit(n, [])

    def validate(self, columns: Sequence[str] | None = None) -> None:
        """Check the graph; with ``columns``, also that every input exists in the data.

        Raises :class:`~regrow.errors.SystemSpecError` naming every problem found.
        """
        problems: list[str] = []
        if not self._components:
            raise SystemSpecError(f"system {self.name!r} has no components", hint="add members")
        self._check_graph()
        for c in self._components.values():
            if isinstance(c, Ensemble):
                for m in c.members:
                    if not isinstance(self._components.get(m), Member):
                        problems.append(
                            f"ensemble {c.name!r} combines {m!r}, which is not a member"
                            + _close_hint_suffix(m, [x.name for x in self.members])
                        )
            else:
                for i in c.inputs:
                    if isinstance(self._components.get(i), Member | Ensemble):
                        problems.append(
                            f"{c.name!r} reads {i!r}, a {self._components[i].kind}; only "
                            "transform outputs and data columns can be inputs"
                        )
                    if i == self.target:
                        problems.append(f"{c.name!r} reads the target column {i!r}")
        ens = self.ensemble
        if ens is not None:
            left_out = [m.name for m in self.members if m.name not in ens.members]
            if left_out:
                problems.append(
                    f"members {left_out} are not combined by ensemble {ens.name!r} (give them "
                    "weight 0 to keep them in the system without effect)"
                )
            if ens.method == "vote" and self.task == "regression":
                problems.append(f"ensemble {ens.name!r} votes, but a regression has no classes")
        if self.task == "classification":
            for member in self.members:
                if not hasattr(member.estimator, "predict_proba"):
                    kind = type(member.estimator).__name__
                    problems.append(
                        f"member {member.name!r} ({kind}) has no predict_proba, "
                        "which a classification system combines (use e.g. SVC(probability=True) "
                        "or CalibratedClassifierCV, or task='regression')"
                    )
        if not self.members:
            problems.append("it has no member")
        else:
            try:
                self.output  # noqa: B018 - raises when members are left uncombined
            except SystemSpecError as exc:
                problems.append(exc.message)
        for c in self._components.values():
            for adapter in getattr(c, "adapters", None) or ():
                if adapter.column in self._components:
                    problems.append(
                        f"{c.name!r} has an adapter of {adapter.column!r}, which is a component, "
                        "not a column"
                    )
        read = {c for n in self._components for c in self.direct_columns(n)}
        for adapter in self.adapters:
            if adapter.column not in read:
                problems.append(
                    f"its {adapter.kind} adapter of {adapter.column!r} adapts a column no "
                    "component reads" + _close_hint_suffix(adapter.column, read)
                )
        if columns is not None:
            available = set(columns)
            if self.target not in available:
                problems.append(
                    f"the target column {self.target!r} is not in the data"
                    + _close_hint_suffix(self.target, available)
                )
            shadowed = sorted(set(self._components) & available)
            if shadowed:
                problems.append(
                    f"components {shadowed} have the names of data columns, which they would hide"
                )
            for c in self._components.values():
                for col in self.direct_columns(c.name):
                    if col not in available:
                        problems.append(
                            f"{c.name!r} reads unknown column {col!r}"
                            + _close_hint_suffix(col, list(available) + list(self._components))
                        )
        if problems:
            unknown = any("reads unknown column" in p for p in problems)
            no_proba = any("has no predict_proba" in p for p in problems)
            raise SystemSpecError(
                f"invalid system {self.name!r}: " + "; ".join(problems),
                hint=(
                    f"a system is a classification unless it says otherwise: for a numeric "
                    f"target write System({self.name!r}, target={self.target!r}, "
                    f'task="regression", components=[...])'
                    if no_proba
                    else "fix the component inputs or the data"
                )
                + (
                    "; if upstream renamed or dropped a column, `regrow adapters propose "
                    "SNAPSHOT --system S` writes the adapters that bridge it"
                    if unknown
                    else ""
                ),
            )

    # -- description --------------------------------------------------------------------------

    def spec(self) -> dict[str, Any]:
        """The system's shape as JSON, stored with every system version.

        Each component appears with its kind, class and inputs; its parameters are part of
        its component version's fingerprint (``parts["recipe"]``), not repeated here.
        """
        spec = {
            "name": self.name,
            "target": self.target,
            "task": self.task,
            "seed": self.seed,
            "definition_file": self.definition_file,
            "order": list(self._components),
            "components": {
                n: {k: v for k, v in c.recipe().items() if k != "params"}
                | ({"adapters": c.adapters.to_list()} if getattr(c, "adapters", None) else {})
                for n, c in self._components.items()
            },
        }
        if self.adapters:  # absent when none: versions without adapters keep their spec
            spec["adapters"] = self.adapters.to_list()
        return spec

    def __repr__(self) -> str:
        return f"System({self.name!r}, target={self.target!r}, components={list(self._components)})"


def _close_hint(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"did you mean {close[0]!r}?" if close else f"known: {sorted(choices)}"


def _close_hint_suffix(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
