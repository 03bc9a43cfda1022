"""A real two-node Ray cluster on this machine, with the catalog on PostgreSQL.

One cluster serves the module: a head (``ray start --head``) and a second node
(``ray start --address``), one CPU each, on loopback, in a temporary folder of their own and
on free ports, so it collides with no other Ray on the machine (nor with the other pytest
worker). Teardown stops both nodes by process group and kills anything still running from the
cluster's folder: no Ray process outlives the module.

Skipped on a machine without Ray or PostgreSQL; fails when ``CI`` is set.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from regrow import Workspace
from regrow.catalog.db import create_engine_for
from regrow.cli import main
from regrow.demo import build_system, make_window
from regrow.monitor.distributed import compare_profiles, profile_partitions
from regrow.monitor.drift_monitor import DriftMonitor
from regrow.monitor.profile import Profile
from regrow.run.runner import RunResult

pytestmark = [
    pytest.mark.slow,
    # Ray's own deprecations, raised in its threads and import machinery, not in regrow.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray"),
    pytest.mark.filterwarnings("ignore::FutureWarning:ray"),
]

NODE_MEMORY = 1024**3  # the "memory" resource each node offers (scheduling, not a cap)
OBJECT_STORE = 100 * 1024**2


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"Ray is not installed ({exc}); CI must run the Ray cluster tests")
        pytest.skip("Ray is not installed: pip install 'regrow[ray]'")
    return ray


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Ray head exited: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
            return
        time.sleep(0.2)
    raise RuntimeError(f"the Ray head did not listen on {port}: {log.read_text()[-2000:]}")


def cluster_pids(folder: str) -> list[int]:
    """Processes whose command line names the cluster's folder (every Ray process of it)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if folder.encode() in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
    return pids


def stop_nodes(processes: list[subprocess.Popen[bytes]], folder: str) -> None:
    """SIGTERM each node's process group, then SIGKILL whatever of the cluster is left."""
    for process in reversed(processes):  # the worker node first, then the head
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 5  # a test cluster needs no graceful drain
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    while time.monotonic() < deadline and cluster_pids(folder):
        time.sleep(0.2)
    for pid in cluster_pids(folder):  # daemons that left the group (raylet's workers, agents)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _reset_token_cache() -> None:
    """Make this process read Ray's auth mode and token from the environment again.

    Ray reads both once per process (at import, and on the first connection); a process that
    imported Ray or started a local instance before would keep the old ones.
    """
    from ray._raylet import AuthenticationTokenLoader, Config

    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


@dataclass(frozen=True)
class Cluster:
    address: str
    folder: str
    node_ids: frozenset[str]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    """A head and a second node, one CPU each; this process connected to it as the driver."""
    ray = _ray()
    cli = Path(sys.executable).parent / "ray"
    if not cli.exists():
        if os.environ.get("CI"):
            pytest.fail(f"the ray command is missing at {cli}")
        pytest.skip(f"the ray command is missing at {cli}")
    if ray.is_initialized():  # another module's connection must not leak into this one
        ray.shutdown()
    folder = tempfile.mkdtemp(prefix="rgray", dir="/tmp")  # short: Ray's socket paths
    port = free_port()
    # The cluster's own token: nodes and driver agree whatever ~/.ray holds (a local Ray
    # started by another test may create a default token there at any moment).
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    env = {**os.environ, **auth, "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1"}
    patch = pytest.MonkeyPatch()
    for key, value in auth.items():
        patch.setenv(key, value)
    _reset_token_cache()
    common = [
        "--block",
        "--node-ip-address=127.0.0.1",
        "--num-cpus=1",
        "--num-gpus=0",
        f"--memory={NODE_MEMORY}",
        f"--object-store-memory={OBJECT_STORE}",
        f"--temp-dir={folder}",
        "--disable-usage-stats",
    ]
    head_args = [
        "--head",
        f"--port={port}",
        "--include-dashboard=false",
        f"--ray-client-server-port={free_port()}",
    ]
    nodes = [head_args, [f"--address=127.0.0.1:{port}"]]
    processes: list[subprocess.Popen[bytes]] = []
    backend = None
    try:
        for i, extra in enumerate(nodes):
            log = Path(folder) / f"node{i}.log"
            args = [str(cli), "start", *extra, *common]
            args.append(f"--dashboard-agent-listen-port={free_port()}")
            with open(log, "wb") as out:
                processes.append(
                    subprocess.Popen(
                        args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
                    )
                )
            if i == 0:
                wait_for_port(port, processes[0], log, timeout=90)
        from regrow.run.ray_backend import RayBackend

        address = f"127.0.0.1:{port}"
        backend = RayBackend(address, init_options={"log_to_driver": False})
        backend.connect()
        deadline = time.monotonic() + 90
        while len(alive := [n for n in ray.nodes() if n["Alive"]]) < 2:
            if time.monotonic() > deadline:
                logs = (Path(folder) / "node1.log").read_text()[-2000:]
                raise RuntimeError(f"the second Ray node did not join: {logs}")
            time.sleep(0.5)
        yield Cluster(address, folder, frozenset(n["NodeID"] for n in alive))
    finally:
        if backend is not None:
            backend.close()
        if ray.is_initialized():
            ray.shutdown()
        stop_nodes(processes, folder)
        patch.undo()
        _reset_token_cache()
        leaked = cluster_pids(folder)
        shutil.rmtree(folder, ignore_errors=True)
        assert not leaked, f"Ray processes outlived the cluster: {leaked}"


def spread(cluster: Cluster) -> Any:
    from regrow.run.ray_backend import RayBackend

    return RayBackend(cluster.address, scheduling_strategy="SPREAD")


@pytest.mark.postgres
def test_the_demo_plan_runs_across_both_nodes_with_a_postgres_catalog(
    cluster: Cluster, postgres_url: str, tmp_path: Path
) -> None:
    backend = spread(cluster)
    with Workspace.init(tmp_path / "ws", catalog_url=postgres_url) as ws:
        old = ws.snapshot(make_window(1500, start="2026-01-01", days=30, seed=0), name="old")
        first = ws.train(build_system(), old, backend=backend)
        assert first.trained == list(build_system().components)
        infos = [
            ws.catalog.get_component_version(o.version_id).info for o in first.components.values()
        ]
        nodes = {info["executor"]["node_id"] for info in infos}
        assert nodes == cluster.node_ids  # both nodes fitted components
        assert {info["executor"]["backend"] for info in infos} == {"ray"}

        new = ws.snapshot(
            make_window(800, start="2026-07-01", days=10, seed=1, expanded=True), name="new"
        )
        plan = ws.plan(first.version.ref, new)
        assert [a.describe() for a in plan.actions] == ["refit geo"]
    # The demo's plan through the command line, on the cluster.
    with pytest.raises(SystemExit) as done:  # typer exits 0 on success
        main(["run", plan.id[:12], "--backend", "ray", "--address", cluster.address,
              "--home", str(tmp_path / "ws"), "--json"])  # fmt: skip
    assert done.value.code in (0, None)
    with Workspace.open(tmp_path / "ws") as ws:
        record = ws.catalog.get_plan(plan.id)
        assert record.status == "executed"
        update = ws.catalog.get_run(record.run_id or "")
        assert update.summary["trained"] == ["geo", "ensemble"]
        assert set(update.summary["reused"]) == set(build_system().components) - {
            "geo",
            "ensemble",
        }
        geo = ws.catalog.get_component_version(
            ws.catalog.get_system_version(record.result_version_id or "").manifest["geo"]
        )
        assert geo.info["executor"]["backend"] == "ray"
        assert ws.load(record.result_version_id or "").predict(
            make_window(50, start="2026-08-01", days=1, seed=2)
        ).shape == (50,)
    backend.close()  # joined an existing connection: leaves it open
    assert _ray().is_initialized()


@pytest.mark.postgres
def test_two_runs_at_once_on_the_same_fingerprints_make_no_duplicates(
    cluster: Cluster, postgres_url: str, tmp_path: Path
) -> None:
    home = tmp_path / "shared"
    with Workspace.init(home, catalog_url=postgres_url) as ws:
        snap = ws.snapshot(make_window(1200, start="2026-01-01", days=30, seed=3), name="w")
    results: list[RunResult] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def user() -> None:
        try:
            with Workspace.open(home) as mine:  # each user: own catalog connections
                barrier.wait()
                results.append(mine.train(build_system(), snap.id, backend=spread(cluster)))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=user) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert errors == []
    assert len(results) == 2
    assert results[0].version.manifest == results[1].version.manifest
    assert results[0].version.id == results[1].version.id  # one system version, not two
    assert sorted(r.created_version for r in results) == [False, True]
    engine = create_engine_for(postgres_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT count(*), count(DISTINCT (system, component, fingerprint)) "
                    "FROM component_versions"
                )
            ).one()
            runs = conn.execute(sa.text("SELECT status FROM runs")).scalars().all()
    finally:
        engine.dispose()
    assert rows == (7, 7)  # one row per fingerprint: one writer won, the other reused it
    assert sorted(runs) == ["succeeded", "succeeded"]


def test_a_window_profiled_per_partition_on_the_cluster_equals_one_process(
    cluster: Cluster, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    rows = 120_000
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=rows),
            "y": rng.lognormal(size=rows),
            "k": rng.poisson(4, rows),
            "c": rng.choice(["a", "b", "c"], rows),
        }
    )
    path = tmp_path / "window.parquet"  # a folder every node of this machine can read
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=10_000)
    merged = profile_partitions(path, partitions=4, executor="ray")
    single = Profile.of(frame)
    comparison = compare_profiles(merged, single)
    assert comparison.agree, comparison
    drifted = frame.sample(20_000, random_state=1).assign(x=lambda f: f["x"] + 0.2)
    a, b = DriftMonitor(single).check(drifted), DriftMonitor(merged).check(drifted)
    assert [f.drifted for f in a.features] == [f.drifted for f in b.features]
    assert a.drifted_columns == ["x"]
