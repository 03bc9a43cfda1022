"""Small fitted systems in memory, and gate contexts over them (no workspace: fast)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.preprocessing import StandardScaler

from regrow import Ensemble, Member, System, Transform
from regrow.components.fitted import FittedComponent, fit_component
from regrow.evaluate.gates import GateContext, HeldOut
from regrow.model import FittedSystem
from regrow.monitor.profile import Profile


def make_rows(
    n: int, seed: int, *, shift: float = 0.0, task: str = "classification"
) -> pd.DataFrame:
    """Rows with two informative features, a noise feature, a region and a sensitive group."""
    rng = np.random.default_rng(seed)
    x1 = rng.normal(shift, 1, n)
    x2 = rng.normal(0, 1, n)
    noise = rng.normal(0, 1, n)
    group = rng.choice(["a", "b"], n, p=[0.6, 0.4])
    region = rng.choice(["north", "south", "east"], n)
    signal = 1.2 * x1 + 0.8 * x2 + 0.3 * (group == "b")
    if task == "classification":
        y: Any = (rng.random(n) < 1 / (1 + np.exp(-signal))).astype(int)
    else:
        y = signal + rng.normal(0, 0.5, n)
    return pd.DataFrame(
        {"x1": x1, "x2": x2, "noise": noise, "group": group, "region": region, "y": y}
    )


def fit(system: System, frame: pd.DataFrame, ref: str) -> FittedSystem:
    """Fit every component of ``system`` on ``frame`` in graph order, in memory."""
    fitted: dict[str, FittedComponent] = {}
    for name in system.order():
        upstream = {n: c for n, c in fitted.items() if n in system.upstream(name)}
        fitted[name] = fit_component(system[name], frame, target="y", upstream=upstream, seed=0)
    return FittedSystem(system.spec(), fitted, ref=ref)


def classifier(inputs: list[str], name: str = "toy") -> System:
    return System(name, target="y", components=[
        Transform("scaled", StandardScaler(), inputs=inputs),
        Member("lr", LogisticRegression(), inputs=["scaled"]),
        Member("lr2", LogisticRegression(C=0.1), inputs=["scaled"]),
        Ensemble("mean", weights={"lr": 1, "lr2": 1}),
    ])  # fmt: skip


def regressor(inputs: list[str]) -> System:
    return System("reg", target="y", task="regression",
                  components=[Member("ols", LinearRegression(), inputs=inputs)])  # fmt: skip


class Toy:
    """Fitted versions and rows to build gate contexts from."""

    def __init__(self, task: str = "classification") -> None:
        self.task = task
        self.train = make_rows(1500, 1, task=task)
        self.evaluation = make_rows(800, 2, task=task)
        self.reference = make_rows(600, 3, task=task)
        build = classifier if task == "classification" else regressor
        self.candidate = fit(build(["x1", "x2"]), self.train, "toy:v2")
        self.baseline = fit(build(["x1"]), self.train, "toy:v1")
        self.train_profile = Profile.of(self.train)

    def context(
        self,
        *,
        baseline: bool = True,
        frame: pd.DataFrame | None = None,
        n_boot: int = 200,
        seed: int = 0,
        **fields: Any,
    ) -> GateContext:
        rows = self.evaluation if frame is None else frame
        profile = self.train_profile.columns
        defaults: dict[str, Any] = {
            "slices": {"north": "region == 'north'", "group_b": "group == 'b'"},
            "candidate_reference": {c: profile[c] for c in ("x1", "x2")},
            "baseline_reference": {"x1": profile["x1"]},
            "training": {"train": self.train_profile},
            "evaluation_profile": Profile.of(rows),
            "reference_rows": lambda name: HeldOut(self.reference, "test reference rows"),
        }
        defaults.update(fields)
        return GateContext.of(
            self.candidate, self.baseline if baseline else None, rows, n_boot=n_boot, seed=seed,
            **defaults,
        )  # fmt: skip


@pytest.fixture(scope="session")
def toy() -> Toy:
    return Toy()


@pytest.fixture(scope="session")
def toy_regression() -> Toy:
    return Toy("regression")


ContextFn = Callable[..., GateContext]
