"""A small version of the partial-update benchmark's scenario: three feature groups, one
LightGBM member each, a stacked ensemble; windows where one group, none, or all changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lightgbm import LGBMRegressor

from regrow import Ensemble, Member, System, Workspace

GROUPS = {"alpha": ["a1", "a2"], "beta": ["b1", "b2"], "gamma": ["c1", "c2"]}


def make(rows: int, seed: int, changed: frozenset[str] = frozenset()) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    cols = [c for g in GROUPS.values() for c in g]
    df = pd.DataFrame(rng.normal(size=(rows, len(cols))), columns=cols)
    a = -1.5 * np.tanh(2 * df.a1) if "alpha" in changed else 1.5 * np.sin(2 * df.a1)
    b = -1.2 * np.abs(df.b1) if "beta" in changed else 1.2 * df.b1 * (df.b1 > 0)
    c = 1.2 * np.cos(2 * df.c1) * df.c2 if "gamma" in changed else 0.8 * df.c1 * df.c2
    df["y"] = a + 0.5 * df.a2 + b - 0.5 * df.b2 + c + 0.3 * rng.normal(size=rows)
    return df


def build_system(method: str = "stack") -> System:
    def gbdt() -> LGBMRegressor:
        return LGBMRegressor(n_estimators=60, learning_rate=0.1, num_leaves=15, n_jobs=1,
                             verbose=-1)  # fmt: skip

    return System(
        "effects",
        target="y",
        task="regression",
        components=[
            *(Member(g, gbdt(), inputs=cols) for g, cols in GROUPS.items()),
            Ensemble("combine", weights=dict.fromkeys(GROUPS, 1.0), method=method),  # type: ignore[arg-type]
        ],
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, str, Path]]:
    """A workspace with v1 trained on 4000 old rows, and windows: one group, none, all changed."""
    home = tmp_path_factory.mktemp("plan-ws")
    with Workspace.init(home) as ws:
        ref = ws.snapshot(make(4000, 1), name="old")
        v1 = ws.train(build_system(), ref)
        ws.snapshot(make(1600, 2, frozenset({"alpha"})), name="alpha-changed")
        ws.snapshot(make(1600, 3), name="quiet")
        ws.snapshot(make(1600, 4, frozenset(GROUPS)), name="all-changed")
        unlabelled = make(800, 5, frozenset({"alpha"})).drop(columns=["y"])
        ws.snapshot(unlabelled, name="unlabelled")
        yield ws, v1.version.ref, home
