"""Fixtures of the serving tests: a small trained workspace, and live servers.

``trained`` (session) trains system ``shop`` once, in a template workspace: inputs ``age``
(int), ``income`` (float) and ``plan`` (string, one-hot encoded), a logistic regression, classes
0 and 1. It has three versions:

- ``shop:v1``, held by ``shop@champion``;
- ``shop:v2``, the same graph trained on other rows (a compatible swap);
- ``shop:v3``, a graph that also reads ``visits`` (int): an incompatible swap.

``serve_home`` (per test) and ``module_serve_home`` (per module) are copies of it to change at
will (move aliases, add tokens). ``live_server`` / ``module_live_server`` are factories: called
with a workspace folder (and more ``regrow serve`` arguments) they start ``regrow serve`` on a
free port, wait for ``/v2/health/ready`` and kill it at teardown.

Test modules cannot import this file, so its helpers come as fixtures too: ``infer_body``
is :func:`shop_request` (an infer request body for ``rows`` rows), ``shop_rows`` is
:func:`shop_frame` (rows of the shop as a DataFrame).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder

from regrow import Member, System, Transform, Workspace
from regrow.config import ServeSettings

with warnings.catch_warnings():
    # Starlette asks for httpx2 instead of httpx (a dependency question for pyproject.toml);
    # its TestClient works with httpx as it is.
    warnings.filterwarnings("ignore", message=".*install `httpx2`", category=UserWarning)
    from fastapi.testclient import TestClient

PLANS = ("free", "pro", "team")


def shop_frame(rows: int, seed: int, *, visits: bool = False) -> pd.DataFrame:
    """Customers of a shop: age, income, plan; ``bought`` depends on all three."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows)
    income = rng.normal(50.0, 15.0, rows).round(2)
    plan = rng.choice(PLANS, rows)
    logit = 0.04 * (age - 45) + 0.05 * (income - 50) + np.where(plan == "pro", 1.0, -0.5)
    frame = pd.DataFrame(
        {
            "age": age,
            "income": income,
            "plan": plan,
            "bought": (rng.uniform(size=rows) < 1 / (1 + np.exp(-logit))).astype(int),
        }
    )
    if visits:
        frame.insert(3, "visits", rng.integers(0, 20, rows))
    return frame


def shop_system(
    *, visits: bool = False, handle_unknown: str = "ignore", adapters: Any = ()
) -> System:
    inputs = ["age", "income", "plan_onehot"] + (["visits"] if visits else [])
    return System(
        "shop",
        target="bought",
        task="classification",
        components=[
            Transform(
                "plan_onehot",
                OneHotEncoder(handle_unknown=handle_unknown, sparse_output=False),
                inputs=["plan"],
            ),
            Member("buyer", LogisticRegression(max_iter=200), inputs=inputs),
        ],
        adapters=adapters,
    )


def shop_request(rows: int = 1, *, seed: int = 7, request_id: str | None = None) -> dict[str, Any]:
    """An infer request body for ``rows`` rows of shop's inputs, one tensor per input."""
    frame = shop_frame(rows, seed)
    body: dict[str, Any] = {
        "inputs": [
            {"name": "age", "shape": [rows], "datatype": "INT64", "data": frame["age"].tolist()},
            {
                "name": "income",
                "shape": [rows],
                "datatype": "FP64",
                "data": frame["income"].tolist(),
            },
            {"name": "plan", "shape": [rows], "datatype": "BYTES", "data": frame["plan"].tolist()},
        ]
    }
    if request_id is not None:
        body["id"] = request_id
    return body


@dataclass(frozen=True)
class Trained:
    """The template workspace and what it holds."""

    home: Path
    versions: dict[str, str] = field(default_factory=dict)  # "v1" -> version id


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    home = tmp_path_factory.mktemp("shop") / "ws"
    with Workspace.init(home) as ws:
        v1 = ws.train(shop_system(), ws.snapshot(shop_frame(300, 0), name="shop")).version
        v2 = ws.train(shop_system(), ws.snapshot(shop_frame(300, 1), name="shop")).version
        wide = ws.snapshot(shop_frame(300, 2, visits=True), name="shop-visits")
        v3 = ws.train(shop_system(visits=True), wide).version
        ws.catalog.move_alias("shop", "champion", v1.id, reason="fixture")
        versions = {"v1": v1.id, "v2": v2.id, "v3": v3.id}
    return Trained(home, versions)


def copy_workspace(trained: Trained, where: Path) -> Path:
    """A copy of the template workspace at ``where``/ws."""
    home = where / "ws"
    shutil.copytree(trained.home, home)
    return home


@pytest.fixture
def serve_home(trained: Trained, tmp_path: Path) -> Path:
    return copy_workspace(trained, tmp_path)


@pytest.fixture(scope="module")
def module_serve_home(trained: Trained, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_workspace(trained, tmp_path_factory.mktemp("served"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    """A `regrow serve` process: its URL, process and output file."""

    url: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the server answers ready (fail with its output if it exits first)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"regrow serve exited with {self.process.returncode}:\n{self.output()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/v2/health/ready", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        pytest.fail(f"regrow serve was not ready within {timeout} s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Send ``sig``, wait for the exit status (kill after ``timeout`` seconds)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return int(self.process.returncode)


class ServerFactory:
    """Starts `regrow serve` processes and stops them all at :meth:`close`."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.servers: list[LiveServer] = []

    def __call__(
        self,
        home: Path,
        *args: str,
        env: dict[str, str] | None = None,
        timeout: float = 60.0,
        wait: bool = True,
    ) -> LiveServer:
        port = free_port()
        log = self.logs / f"serve-{port}.log"
        command = [sys.executable, "-m", "regrow.cli", "serve", "--home", str(home)]
        command += ["--port", str(port), *args]
        with log.open("wb") as sink:
            process = subprocess.Popen(
                command, stdout=sink, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
            )
        server = LiveServer(f"http://127.0.0.1:{port}", port, process, log)
        self.servers.append(server)
        if wait:
            server.wait_ready(timeout)
        return server

    def close(self) -> None:
        for server in self.servers:
            with contextlib.suppress(Exception):
                server.stop(signal.SIGTERM, 10)


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    factory = ServerFactory(tmp_path)
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="module")
def module_live_server(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., LiveServer]]:
    factory = ServerFactory(tmp_path_factory.mktemp("servers"))
    try:
        yield factory
    finally:
        factory.close()


@pytest.fixture(scope="session")
def infer_body() -> Callable[..., dict[str, Any]]:
    return shop_request


@pytest.fixture(scope="session")
def shop_rows() -> Callable[..., pd.DataFrame]:
    return shop_frame


@pytest.fixture(scope="session")
def shop_graph() -> Callable[..., System]:
    """:func:`shop_system`: the shop's graph (``adapters=`` sets its boundary adapters)."""
    return shop_system


@pytest.fixture
def serve_client() -> Iterator[Callable[..., TestClient]]:
    """``serve_client(home, *, models=None, load="now", **settings)``: a started client of
    ``create_app(home, ServeSettings(**settings))``; ``log_predictions`` defaults to False."""
    from regrow.serve.app import create_app

    clients: list[TestClient] = []

    def make(
        home: Path, *, models: list[str] | None = None, load: str = "now", **settings: Any
    ) -> TestClient:
        settings.setdefault("log_predictions", False)
        app = create_app(home, ServeSettings(**settings), models=models, load=load)  # type: ignore[arg-type]
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for client in reversed(clients):
            client.__exit__(None, None, None)
