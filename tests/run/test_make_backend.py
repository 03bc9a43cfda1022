"""Choosing a backend by name, and the errors bad choices get (no Ray cluster is started)."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression
from xgboost import XGBClassifier

from regrow.components.base import Member
from regrow.config import Config
from regrow.errors import ConfigError
from regrow.run.backends import LocalBackend, make_backend, task_order
from regrow.run.tasks import TaskSpec


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # free again once closed: nothing listens there


def test_local_is_the_default_and_takes_workers() -> None:
    assert isinstance(make_backend(), LocalBackend)
    backend = make_backend("LOCAL", workers=3)
    assert isinstance(backend, LocalBackend)
    assert backend.max_workers == 3


def test_an_unknown_backend_name_is_refused_with_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"unknown executor backend 'dask'; use one of 'local'"):
        make_backend("dask")


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_bad_worker_counts_are_refused(workers: object) -> None:
    with pytest.raises(ConfigError, match=f"workers must be an integer >= 1 \\(got {workers!r}"):
        make_backend("local", workers=workers)  # type: ignore[arg-type]


def test_ray_options_on_the_local_backend_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"\['address'\] do not apply to the local backend"):
        make_backend("local", address="127.0.0.1:6379")
    with pytest.raises(ConfigError, match=r"\['num_cpus'\] do not apply"):
        make_backend("local", num_cpus=2)


def test_a_missing_ray_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` sees without Ray
    with pytest.raises(ConfigError, match=r"needs Ray.*pip install 'regrow\[ray\]'"):
        make_backend("ray")


def test_an_unreachable_ray_address_is_refused_at_once() -> None:
    pytest.importorskip("ray")
    address = f"127.0.0.1:{closed_port()}"
    with pytest.raises(ConfigError, match=f"cannot reach a Ray cluster at '{address}'.*ray start"):
        make_backend("ray", address=address)


@pytest.mark.parametrize("address", ["nohost", "head:port", ""])
def test_a_malformed_ray_address_is_refused(address: str) -> None:
    pytest.importorskip("ray")
    with pytest.raises(ConfigError, match=r"Ray address|non-empty string"):
        make_backend("ray", address=address)


def test_workers_and_an_address_do_not_mix() -> None:
    pytest.importorskip("ray")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        address = f"127.0.0.1:{server.getsockname()[1]}"
        with pytest.raises(ConfigError, match="workers=2 does not apply with a Ray address"):
            make_backend("ray", address=address, workers=2)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("num_cpus", 0, "num_cpus must be a number > 0 (got 0)"),
        ("num_gpus", -1, "num_gpus must be a number >= 0 (got -1)"),
        ("memory", 0, "memory must be a number of bytes > 0 or None (got 0)"),
        ("max_retries", -2, "max_retries must be an integer >= -1 (got -2)"),
        ("scheduling_strategy", "PACK", "scheduling_strategy must be 'DEFAULT' or 'SPREAD'"),
    ],
)
def test_bad_ray_options_are_refused_by_name(option: str, value: object, message: str) -> None:
    pytest.importorskip("ray")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_backend("ray", **{option: value})


def task(component: Member) -> TaskSpec:
    return TaskSpec(component.name, component, "y", 0, "/tmp/store", None, ("x", "y"))


def test_a_member_that_asks_for_cuda_gets_a_gpu() -> None:
    pytest.importorskip("ray")
    from regrow.run.ray_backend import RayBackend, TaskResources, wants_gpu

    gpu = Member("boost", XGBClassifier(device="cuda"), inputs=["x"])
    cpu = Member("linear", LogisticRegression(), inputs=["x"])
    assert wants_gpu(gpu)
    assert not wants_gpu(cpu)
    backend = RayBackend(num_cpus=2, memory=2**30)
    assert backend.resources_for(task(gpu)) == TaskResources(2, 2**30, 1.0)
    assert backend.resources_for(task(cpu)).options() == {
        "num_cpus": 2,
        "num_gpus": 0.0,
        "memory": 2**30,
    }
    pinned = RayBackend(num_gpus=0, resources={"linear": TaskResources(num_cpus=4)})
    assert pinned.resources_for(task(gpu)).num_gpus == 0
    assert pinned.resources_for(task(cpu)).num_cpus == 4


def test_task_graphs_with_cycles_or_unknown_tasks_are_refused() -> None:
    a = task(Member("a", LogisticRegression(), inputs=["x"]))
    b = task(Member("b", LogisticRegression(), inputs=["x"]))
    with pytest.raises(ConfigError, match="cycle: a -> b -> a"):
        task_order([a, b], {"a": ["b"], "b": ["a"]})
    with pytest.raises(ConfigError, match=r"task 'a' depends on \['zz'\], which are not submitted"):
        task_order([a, b], {"a": ["zz"]})
    with pytest.raises(ConfigError, match="two submitted tasks are named 'a'"):
        task_order([a, a], None)


def test_the_run_section_of_config_toml_chooses_the_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("REGROW_BACKEND", raising=False)
    monkeypatch.delenv("REGROW_RAY_ADDRESS", raising=False)
    Config(home=tmp_path, backend="ray", address="10.0.0.5:6379").write()
    loaded = Config.load(tmp_path)
    assert loaded.backend_options() == {"name": "ray", "address": "10.0.0.5:6379", "workers": None}
    monkeypatch.setenv("REGROW_BACKEND", "local")
    monkeypatch.setenv("REGROW_RAY_ADDRESS", "127.0.0.1:1")
    assert Config.load(tmp_path).backend == "local"
    assert Config.load(tmp_path).address == "127.0.0.1:1"
    Config(home=tmp_path, workers=2).write()
    monkeypatch.delenv("REGROW_BACKEND")
    monkeypatch.delenv("REGROW_RAY_ADDRESS")
    backend = make_backend(**Config.load(tmp_path).backend_options())
    assert isinstance(backend, LocalBackend)
    assert backend.max_workers == 2
    Config(home=tmp_path).write()
    assert "[run]" not in (tmp_path / "config.toml").read_text()  # defaults are not written


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[run]\nbackend = "ray"\nhost = "x"', r"unknown key\(s\) \['host'\] in \[run\]"),
        ("[run]\nbackend = 3", r"\[run\] backend .* must be a non-empty string \(got 3\)"),
        ("[run]\nworkers = 0", r"\[run\] workers .* must be an integer >= 1 \(got 0\)"),
        ('run = "ray"', r"\[run\] .* must be a table"),
    ],
)
def test_bad_run_sections_are_named(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "config.toml").write_text(content)
    with pytest.raises(ConfigError, match=message):
        Config.load(tmp_path)
