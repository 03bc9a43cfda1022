"""Fixtures shared by every test folder: the PostgreSQL server, and a schema per test.

The server is ``REGROW_TEST_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/test``).
When it is unreachable the PostgreSQL tests are skipped on a laptop, but fail when ``CI`` is
set: CI must run them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

# The suite runs two pytest workers on two cores: OpenMP/BLAS pools of one thread each keep
# them from spin-waiting on each other (oversubscribed, boosted-tree fits ran 10-100x slower).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, settings
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError
from threadpoolctl import threadpool_limits

from regrow.catalog.db import create_engine_for
from regrow.errors import MissingDependency
from regrow.testing import postgres_schema

threadpool_limits(1)

# Property tests check behaviour, not speed: on a loaded machine (two pytest workers on two
# busy cores) one example can take far longer than Hypothesis' default 200 ms deadline, and
# its too-slow health check fails on the same grounds. Both are off for every property test
# (a test's own @settings inherit this); speed is measured by the scripts in benchmarks/.
settings.register_profile("regrow", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("regrow")

_KSERVE_PREBUILD: list[subprocess.Popen[bytes]] = []


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start building the kserve client's venv in the background when its test will run.

    Building it (``tests/serve/_client_venv.py``: a venv and ``pip install kserve``) takes
    from tens of seconds to minutes, mostly waiting on the package index; its session fixture
    would block one worker for all of it. Started here, the build overlaps the other tests,
    and the fixture's file lock makes it wait for this build and then reuse it. A build that
    fails here is retried by the fixture, which reports the error as before. Only one process
    starts it (the first xdist worker, or pytest without xdist).
    """
    if session.config.option.collectonly or os.environ.get("PYTEST_XDIST_WORKER", "gw0") != "gw0":
        return
    wanted = any(
        item.path.name == "test_clients.py" and "kserve" in item.name for item in session.items
    )
    if not wanted:
        return
    folder = Path(__file__).parent / "serve"
    code = (
        f"import sys; sys.path.insert(0, {str(folder)!r}); import _client_venv as v\n"
        "try:\n    v.ensure_kserve_venv()\nexcept v.VenvUnavailable:\n    pass\n"
    )
    _KSERVE_PREBUILD.append(
        subprocess.Popen(
            [sys.executable, "-c", code],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    )


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop a background kserve build still running (the session ended before its test)."""
    for process in _KSERVE_PREBUILD:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)


PG_URL = os.environ.get("REGROW_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine]:
    """An engine on the test PostgreSQL database (skips, or fails in CI, if unreachable)."""
    probe_url = make_url(PG_URL)
    if "connect_timeout" not in probe_url.query:
        probe_url = probe_url.update_query_dict({"connect_timeout": "5"})
    engine: Engine | None = None
    try:
        engine = create_engine_for(probe_url.render_as_string(hide_password=False))
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except (OperationalError, MissingDependency) as exc:
        if engine is not None:
            engine.dispose()
        message = f"PostgreSQL is unavailable at {PG_URL} ({exc})"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must run the PostgreSQL catalog tests")
        pytest.skip(f"{message}; set REGROW_TEST_POSTGRES_URL to run these tests")
    assert engine is not None
    yield engine
    engine.dispose()


@pytest.fixture
def postgres_url(postgres_admin: Engine) -> Iterator[str]:
    """The URL of a fresh, empty PostgreSQL schema, dropped after the test."""
    with postgres_schema(PG_URL) as url:
        yield url
