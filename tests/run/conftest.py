"""Fixtures of the executor contract suite: every test runs on each backend.

``local`` runs tasks in the test's process, ``local-2`` in two worker processes, ``ray`` on a
private two-CPU Ray instance started once per test module (and shut down after it), so no
Ray starts for the local-only tests. Ray tests are skipped on a machine without Ray, but fail
when ``CI`` is set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from regrow.catalog.store import ArtifactStore, open_store
from regrow.run.backends import ExecutorBackend, LocalBackend

BACKENDS = ["local", "local-2", pytest.param("ray", marks=pytest.mark.slow)]


def require_ray() -> Any:
    """The ray module, or skip (fail in CI) when it is missing."""
    try:
        import ray
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Ray is not installed ({exc}); CI must run the Ray tests")
        pytest.skip("Ray is not installed: pip install 'regrow[ray]'")
    return ray


@pytest.fixture(scope="module")
def _local_pool() -> Iterator[LocalBackend]:
    backend = LocalBackend(max_workers=2)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def _ray_backend() -> Iterator[ExecutorBackend]:
    ray = require_ray()
    from regrow.run.ray_backend import RayBackend

    if ray.is_initialized():  # a previous module's connection must not leak into this one
        ray.shutdown()
    backend = RayBackend(
        workers=2,
        init_options={"object_store_memory": 100 * 1024**2, "log_to_driver": False},
    )
    backend.connect()
    yield backend
    backend.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> ExecutorBackend:
    """Each executor backend in turn."""
    if request.param == "local":
        return LocalBackend()
    if request.param == "local-2":
        pool: LocalBackend = request.getfixturevalue("_local_pool")
        return pool
    ray_backend: ExecutorBackend = request.getfixturevalue("_ray_backend")
    return ray_backend


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    """A local folder store: shared by every worker of this machine."""
    return open_store(tmp_path / "store")


@pytest.fixture
def frame() -> pd.DataFrame:
    """A small classification table: two informative columns, a category, a target."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 2))
    return pd.DataFrame(
        {
            "a": x[:, 0],
            "b": x[:, 1],
            "c": rng.choice(["u", "v"], 400),
            "y": (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int),
        }
    )
