"""The Ray executor backend: each task of a run is one Ray task on a cluster.

:class:`RayBackend` implements :class:`~regrow.run.backends.ExecutorBackend`. A task carries
only its :class:`~regrow.run.tasks.TaskSpec` (component spec, seed, the store's URL and artifact
keys): the worker reads its data from the artifact store and writes the fitted component back
there, so the store URL must be reachable from every node (a shared folder, ``s3://...``).
The catalog is written by the driver only.

- **Resources.** Each task asks for ``num_cpus`` (default 1), optionally ``memory`` bytes, and
  GPUs when its component asks for one (an estimator parameter ``device="cuda"``, ``"gpu"``,
  ...; see :func:`wants_gpu`); ``resources`` overrides them per component name.
- **Retries.** ``max_retries`` re-runs a task whose worker or node died (Ray's default, 3);
  ``retry_exceptions`` also re-runs tasks that raised (off: a fit error repeats itself).
- **Failures** are yielded as a :class:`~regrow.errors.RunError` that names the component and
  carries the remote traceback.
- **Cancelling** (``Submission.cancel()``, closing ``run()``'s generator, ``close()``) calls
  ``ray.cancel`` on every unfinished task.
- **Connecting.** ``address=None`` starts a private local Ray instance (``workers`` CPUs);
  ``"host:port"`` or ``"ray://host:port"`` connects to a running cluster (checked at once:
  an unreachable address raises :class:`~regrow.errors.ConfigError`); ``"auto"`` finds one
  on this machine. If this process is already connected, that connection is used. ``close()``
  shuts down only a connection the backend opened.
- **When the driver dies** (``kill -9`` included), Ray ends its job: on a cluster the raylets
  kill the job's workers, so its tasks stop (measured: 0.2 s). A private instance dies with
  the driver too (Ray's own processes fate-share with it; its task workers follow within
  about 2 s), except Ray's dashboard and runtime-env agents, which try to report the raylet's
  death to the dead GCS for 60 s: a :class:`~regrow.run.guard.Guard` kills every process of
  the instance at once instead. With ``ray://`` (Ray Client) the server keeps a dead
  driver's session, and its tasks, for its reconnect grace period (30 s by default).

>>> RayBackend(num_cpus=0)
Traceback (most recent call last):
...
regrow.errors.ConfigError: num_cpus must be a number > 0 (got 0); ...
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from regrow.components.base import Component
from regrow.errors import ConfigError, MissingDependency, RunError
from regrow.run.backends import (
    Progress,
    Submission,
    TaskOutcome,
    _run_submission,
    cancelled_error,
    check_workers,
    task_order,
    upstream_failed_error,
)
from regrow.run.guard import Guard, descendants
from regrow.run.tasks import TaskResult, TaskSpec, run_task

__all__ = ["RayBackend", "TaskResources", "require_ray", "wants_gpu"]

#: Seconds a cancelled task may take to stop after its interrupt before its worker is killed.
CANCEL_GRACE_SECONDS = 3.0

_GPU_PARAMS = ("device", "device_type", "accelerator", "tree_method")
_GPU_VALUES = ("cuda", "gpu")


def require_ray() -> Any:
    """The ``ray`` module; :class:`~regrow.errors.MissingDependency` if it is not installed."""
    try:
        import ray
    except ImportError as exc:
        raise MissingDependency("ray", "ray") from exc
    return ray


def wants_gpu(component: Component) -> bool:
    """Whether ``component``'s estimator asks for a GPU (``device="cuda"``, ``"gpu"``, ...).

    >>> from sklearn.linear_model import LogisticRegression
    >>> from regrow.components.base import Member
    >>> wants_gpu(Member("m", LogisticRegression(), inputs=["x"]))
    False
    """
    estimator = component.estimator
    if estimator is None:
        return False
    params: dict[str, Any] = {}
    if hasattr(estimator, "get_params"):
        params.update(estimator.get_params())
    for attribute in _GPU_PARAMS:
        value = getattr(estimator, attribute, None)
        if isinstance(value, str):
            params.setdefault(attribute, value)
    for key, value in params.items():
        gpu = isinstance(value, str) and any(tag in value.lower() for tag in _GPU_VALUES)
        if gpu and key.rsplit("__", 1)[-1] in _GPU_PARAMS:
            return True
    return False


@dataclass(frozen=True)
class TaskResources:
    """What one Ray task asks the scheduler for: CPUs, memory in bytes, GPUs."""

    num_cpus: float = 1.0
    memory: int | None = None
    num_gpus: float = 0.0

    def __post_init__(self) -> None:
        _check_number("num_cpus", self.num_cpus, low=0.0, strict=True)
        _check_number("num_gpus", self.num_gpus, low=0.0, strict=False)
        if self.memory is not None and (
            isinstance(self.memory, bool) or not isinstance(self.memory, int) or self.memory <= 0
        ):
            raise ConfigError(
                f"memory must be a number of bytes > 0 or None (got {self.memory!r})",
                hint="for example memory=2 * 1024**3 for 2 GiB",
            )

    def options(self) -> dict[str, Any]:
        """The keyword arguments of ``remote_function.options(...)``."""
        out: dict[str, Any] = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus}
        if self.memory is not None:
            out["memory"] = self.memory
        return out


def _check_number(name: str, value: Any, *, low: float, strict: bool) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or (value <= low if strict else value < low):
        relation = ">" if strict else ">="
        raise ConfigError(
            f"{name} must be a number {relation} {low:g} (got {value!r})",
            hint=f"for example {name}=1",
        )
    return float(value)


def _run_on_ray(spec: TaskSpec, dependencies: tuple[str, ...], *results: TaskResult) -> TaskResult:
    """What a Ray worker runs: fill upstream keys from finished dependencies, run the task."""
    import ray

    done = dict(zip(dependencies, results, strict=True))
    upstream = {k: done[k].artifact if k in done else v for k, v in spec.upstream.items()}
    result = run_task(replace(spec, upstream=upstream))
    context = ray.get_runtime_context()
    executor = {
        "backend": "ray",
        "node_id": context.get_node_id(),
        "node_ip": ray.util.get_node_ip_address(),  # type: ignore[no-untyped-call]
        "pid": os.getpid(),
    }
    return replace(result, info={**result.info, "executor": executor})


class _RaySubmission:
    """A task graph submitted to Ray at once; dependencies are passed as object refs."""

    def __init__(
        self,
        backend: RayBackend,
        tasks: Sequence[TaskSpec],
        depends: Mapping[str, Sequence[str]] | None,
    ) -> None:
        ray = require_ray()
        self.tasks = tuple(task_order(tasks, depends))
        self._backend = backend
        self._deps = {t.name: tuple((depends or {}).get(t.name, ())) for t in self.tasks}
        self._refs: dict[str, Any] = {}
        self._outcomes: dict[str, TaskResult | BaseException] = {}
        self._cancelled: set[str] = set()
        self._cancelling = False
        self._started = False
        self._ray = ray
        remote = backend._remote_function()
        if backend.check_resources:
            backend._check_feasible([(t.name, backend.resources_for(t)) for t in self.tasks])
        try:
            for task in self.tasks:
                self._submit(remote, task)
        except BaseException:
            self.cancel()  # nothing half-submitted keeps running
            raise

    def _submit(self, remote: Any, task: TaskSpec) -> None:
        backend = self._backend
        deps = self._deps[task.name]
        options = {
            **backend.resources_for(task).options(),
            "max_retries": backend.max_retries,
            "retry_exceptions": backend.retry_exceptions,
            "name": f"regrow:{task.name}",
            "scheduling_strategy": backend.scheduling_strategy,
        }
        if backend.runtime_env is not None:
            options["runtime_env"] = dict(backend.runtime_env)
        self._refs[task.name] = remote.options(**options).remote(
            task, deps, *(self._refs[d] for d in deps)
        )

    def progress(self) -> Progress:
        """Counts now; ``running`` counts every task handed to Ray without an outcome yet."""
        outcomes = list(self._outcomes.values())
        ok = sum(isinstance(o, TaskResult) for o in outcomes)
        cancelled = len(self._cancelled)
        failed = len(outcomes) - ok - cancelled
        return Progress(len(self.tasks), ok, failed, cancelled, len(self.tasks) - len(outcomes))

    def cancel(self) -> None:
        """``ray.cancel`` every task without an outcome (recursively); one still running
        :data:`CANCEL_GRACE_SECONDS` later has its worker killed (``force``)."""
        self._cancelling = True
        pending = [ref for name, ref in self._refs.items() if name not in self._outcomes]
        for ref in pending:
            # Cancelling a task that finished or was lost meanwhile is moot.
            with contextlib.suppress(Exception):
                self._ray.cancel(ref, force=self._backend.force_cancel, recursive=True)
        if not pending or self._backend.force_cancel:
            return
        # An interrupt can be lost (a task that began as it was sent): on a loaded two-core
        # machine two cancelled ten-minute fits held both workers to their end, and the next
        # run waited for them. What still runs after the grace period is killed.
        with contextlib.suppress(Exception):
            _, running = self._ray.wait(
                pending, num_returns=len(pending), timeout=CANCEL_GRACE_SECONDS
            )
            for ref in running:
                with contextlib.suppress(Exception):
                    self._ray.cancel(ref, force=True, recursive=True)

    def results(self) -> Iterator[TaskOutcome]:
        if self._started:
            raise RunError("results() of a submission can be iterated once")
        self._started = True
        by_ref = {ref: name for name, ref in self._refs.items()}
        tasks = {t.name: t for t in self.tasks}
        yielded: set[str] = set()
        while len(yielded) < len(self.tasks):
            for name in [n for n in self._outcomes if n not in yielded]:
                yielded.add(name)  # settled while looking at a dependent, or just now
                yield tasks[name], self._outcomes[name]
            waiting = [self._refs[n] for n in self._refs if n not in self._outcomes]
            if not waiting:
                continue
            if self._cancelling:
                ready, _ = self._ray.wait(waiting, num_returns=len(waiting), timeout=0)
                for ref in waiting:
                    name = by_ref[ref]
                    if name in self._outcomes:
                        continue
                    if ref in ready:
                        self._settle(name, ref)
                    else:
                        self._cancelled.add(name)
                        self._outcomes[name] = cancelled_error(name)
                continue
            ready, _ = self._ray.wait(waiting, num_returns=1, timeout=None)
            for ref in ready:
                if by_ref[ref] not in self._outcomes:
                    self._settle(by_ref[ref], ref)

    def _settle(self, name: str, ref: Any) -> TaskResult | BaseException:
        ray = self._ray
        outcome: TaskResult | BaseException
        try:
            outcome = ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            self._cancelled.add(name)
            outcome = cancelled_error(name)
        except ray.exceptions.RayTaskError as exc:
            blocker = self._failed_dependency(name)
            outcome = (
                upstream_failed_error(name, blocker)
                if blocker is not None
                else self._task_error(name, exc)
            )
        except ray.exceptions.RayError as exc:
            blocker = self._failed_dependency(name)
            outcome = (
                upstream_failed_error(name, blocker)
                if blocker is not None
                else RunError(
                    f"component {name!r} could not finish on Ray: {type(exc).__name__}: {exc}",
                    hint=f"Ray retried it up to max_retries={self._backend.max_retries} times; "
                    "check the cluster's nodes and memory with `ray status`",
                )
            )
        self._outcomes[name] = outcome
        return outcome

    def _failed_dependency(self, name: str) -> str | None:
        for dep in self._deps[name]:
            outcome = self._outcomes.get(dep)
            if outcome is None:
                ready, _ = self._ray.wait([self._refs[dep]], timeout=0)
                if not ready:
                    continue
                outcome = self._settle(dep, self._refs[dep])
            if not isinstance(outcome, TaskResult):
                return dep
        return None

    def _task_error(self, name: str, exc: Any) -> RunError:
        cause = getattr(exc, "cause", None)
        what = f"{type(cause).__name__}: {cause}" if cause is not None else str(exc)
        where = getattr(exc, "ip", None)
        trace = getattr(exc, "traceback_str", None) or str(exc)
        error = RunError(
            f"component {name!r} failed on Ray{f' (node {where})' if where else ''}: {what}\n"
            f"Remote traceback:\n{trace.rstrip()}",
            hint="fix the cause and run again: finished components are reused",
        )
        if isinstance(cause, BaseException):
            error.__cause__ = cause
        return error


class RayBackend:
    """Runs each task as a Ray task on a cluster (see the module docstring).

    ``workers`` is the CPU count of the private local instance started when ``address`` is
    None; with an address the cluster's resources decide, and giving ``workers`` is an error.
    ``init_options`` go to ``ray.init`` when this backend starts or connects Ray (for example
    ``{"object_store_memory": 200 * 1024**2}``). ``check_resources`` refuses, before
    submitting, a task that asks for more CPUs, GPUs or memory than any live node has (Ray
    would wait for such a node forever); turn it off on an autoscaling cluster.
    ``force_cancel`` kills a cancelled task's worker process instead of interrupting it.
    """

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        *,
        workers: int | None = None,
        num_cpus: float = 1.0,
        memory: int | None = None,
        num_gpus: float | None = None,
        resources: Mapping[str, TaskResources] | None = None,
        max_retries: int = 3,
        retry_exceptions: bool | Sequence[type[BaseException]] = False,
        runtime_env: Mapping[str, Any] | None = None,
        scheduling_strategy: str = "DEFAULT",
        force_cancel: bool = False,
        check_resources: bool = True,
        init_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.address = address
        self.workers = workers
        self.num_cpus = num_cpus
        self.memory = memory
        self.num_gpus = num_gpus
        self.resources = dict(resources or {})
        self.max_retries = max_retries
        self.retry_exceptions = retry_exceptions
        self.runtime_env = runtime_env
        self.scheduling_strategy = scheduling_strategy
        self.force_cancel = force_cancel
        self.check_resources = check_resources
        self.init_options = dict(init_options or {})
        self._default = TaskResources(num_cpus, memory, 0.0 if num_gpus is None else num_gpus)
        if num_gpus is not None:
            _check_number("num_gpus", num_gpus, low=0.0, strict=False)
        self._validate()
        self._started_ray = False
        self._guard: Guard | None = None
        self._remote: Any = None
        self._submissions: list[_RaySubmission] = []
        self._nodes: tuple[float, list[dict[str, float]]] | None = None

    def __repr__(self) -> str:
        return f"RayBackend(address={self.address!r}, num_cpus={self.num_cpus})"

    def _validate(self) -> None:
        if self.address is not None:
            _probe(self.address)
            if self.workers is not None:
                raise ConfigError(
                    f"workers={self.workers!r} does not apply with a Ray address "
                    f"({self.address!r}): the cluster's resources decide",
                    hint="drop workers, or set num_cpus per task",
                )
        elif self.workers is not None:
            check_workers(self.workers, "the CPUs of the local Ray instance, for example workers=2")
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise ConfigError(
                f"max_retries must be an integer >= -1 (got {self.max_retries!r})",
                hint="-1 retries forever, 0 never",
            )
        if self.max_retries < -1:
            raise ConfigError(
                f"max_retries must be an integer >= -1 (got {self.max_retries!r})",
                hint="-1 retries forever, 0 never",
            )
        if self.scheduling_strategy not in ("DEFAULT", "SPREAD"):
            raise ConfigError(
                f"scheduling_strategy must be 'DEFAULT' or 'SPREAD' "
                f"(got {self.scheduling_strategy!r})",
                hint="SPREAD places tasks on as many nodes as it can",
            )
        for name, spec in self.resources.items():
            if not isinstance(spec, TaskResources):
                raise ConfigError(
                    f"resources[{name!r}] must be a TaskResources (got {spec!r})",
                    hint="for example TaskResources(num_cpus=2, num_gpus=1)",
                )

    def resources_for(self, task: TaskSpec) -> TaskResources:
        """What ``task`` asks for: its override, else the defaults (+1 GPU when it wants one)."""
        if task.name in self.resources:
            return self.resources[task.name]
        if self.num_gpus is None and wants_gpu(task.component):
            return replace(self._default, num_gpus=1.0)
        return self._default

    # -- connecting ---------------------------------------------------------------------------

    def connect(self) -> None:
        """Start or join Ray now (``submit`` does it on first use)."""
        ray = require_ray()
        if ray.is_initialized():
            self._check_same_cluster(ray)
            return
        options: dict[str, Any] = {
            "include_dashboard": False,
            "configure_logging": False,
            "namespace": "regrow",
            **self.init_options,
        }
        if self.address is None:
            options.setdefault("num_cpus", self.workers or os.cpu_count() or 1)
            target = "local"  # never an existing cluster found on this machine by accident
        else:
            target = self.address
        before = descendants(os.getpid()) if self.address is None else set()
        try:
            ray.init(address=target, **options)
        except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
            raise ConfigError(
                f"cannot connect to Ray at {self.address or 'a new local instance'!r}: {exc}",
                hint="check the address (the head's host:port) and that the cluster runs the "
                "same Ray and Python versions as this process",
            ) from exc
        self._started_ray = True
        if self.address is None:
            self._guard = _guard_instance(descendants(os.getpid()) - before)

    def _check_same_cluster(self, ray: Any) -> None:
        if self.address is None or self.address == "auto" or self.address.startswith("ray://"):
            return
        current = str(ray.get_runtime_context().gcs_address)
        if _normalise(current) != _normalise(self.address):
            raise ConfigError(
                f"this process is already connected to the Ray cluster at {current!r}, "
                f"not {self.address!r}",
                hint="call ray.shutdown() first, or pass the address it is connected to",
            )

    def _check_feasible(self, wanted: Sequence[tuple[str, TaskResources]]) -> None:
        """Raise ConfigError for a task no live node of the cluster can ever run.

        The nodes' resources are read at most every 30 s (and again before refusing).
        """
        for fresh in (False, True):
            nodes = self._node_resources(fresh)
            missing = [(n, r) for n, r in wanted if not any(_fits(r, node) for node in nodes)]
            if not missing:
                return
        name, res = missing[0]
        asks = _asks(res)
        largest = {k: max((node.get(k, 0.0) for node in nodes), default=0.0) for k in asks}
        over = [k for k, v in asks.items() if v > largest[k]] or list(asks)  # else: no one node
        short = ", ".join(f"{k} {asks[k]:g} (largest node: {largest[k]:g})" for k in over)
        raise ConfigError(
            f"component {name!r} asks for {short}: no node of the Ray cluster can run it",
            hint="lower num_cpus/num_gpus/memory (or its resources[...] entry), add a node "
            "that has them, or pass check_resources=False on an autoscaling cluster",
        )

    def _node_resources(self, fresh: bool) -> list[dict[str, float]]:
        now = time.monotonic()
        if fresh or self._nodes is None or now - self._nodes[0] > 30:
            ray = require_ray()
            nodes = [dict(n.get("Resources", {})) for n in ray.nodes() if n.get("Alive")]
            self._nodes = (now, nodes)
        return self._nodes[1]

    def _remote_function(self) -> Any:
        self.connect()
        if self._remote is None:
            ray = require_ray()
            self._remote = ray.remote(_run_on_ray)
        return self._remote

    # -- the contract -------------------------------------------------------------------------

    def submit(
        self, tasks: Sequence[TaskSpec], *, depends: Mapping[str, Sequence[str]] | None = None
    ) -> Submission:
        """Hand the task graph to Ray at once (see :meth:`ExecutorBackend.submit`)."""
        submission = _RaySubmission(self, tasks, depends)
        self._submissions = [s for s in self._submissions if not s.progress().done]
        self._submissions.append(submission)
        return submission

    def run(self, tasks: Sequence[TaskSpec]) -> Iterator[TaskOutcome]:
        """Run independent tasks, yielding outcomes as they finish (see the Protocol)."""
        return _run_submission(self.submit(tasks))

    def close(self) -> None:
        """Cancel outstanding tasks; shut Ray down if this backend started or joined it."""
        for submission in self._submissions:
            submission.cancel()
        self._submissions.clear()
        self._remote = None
        self._nodes = None
        if self._started_ray:
            ray = require_ray()
            if ray.is_initialized():
                ray.shutdown()
            self._started_ray = False
        if self._guard is not None:
            self._guard.dismiss()
            self._guard = None


def _guard_instance(processes: set[int]) -> Guard | None:
    """A guard over the processes of the private Ray instance this process just started.

    Each is a "server": should this process die, the guard stops it and kills its children
    too (the raylet's workers), then kills it.
    """
    if not processes:
        return None
    guard = Guard()
    for pid in sorted(processes):
        guard.watch(pid, server=True)
    return guard


def _asks(res: TaskResources) -> dict[str, float]:
    asks = {"CPU": res.num_cpus, "GPU": res.num_gpus, "memory": float(res.memory or 0)}
    return {k: v for k, v in asks.items() if v}


def _fits(res: TaskResources, node: Mapping[str, float]) -> bool:
    return all(node.get(k, 0.0) >= v for k, v in _asks(res).items())


def _split(address: str) -> tuple[str, int] | None:
    text = address.removeprefix("ray://")
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return None
    return host.strip("[]"), int(port)


def _normalise(address: str) -> str:
    """``host:port`` with the host as an IP, every address of this machine as 127.0.0.1.

    Ray reports a cluster on this machine under the machine's IP even when it was joined
    through 127.0.0.1, so both name the same cluster.
    """
    parsed = _split(address)
    if parsed is None:
        return address
    host, port = parsed
    with contextlib.suppress(OSError):
        host = socket.gethostbyname(host)
    if _is_local(host):
        host = "127.0.0.1"
    return f"{host}:{port}"


def _is_local(host: str) -> bool:
    """Whether ``host`` is an address of this machine (a socket can bind to it)."""
    if host.startswith("127.") or host == "::1":
        return True
    try:
        with socket.socket() as probe:
            probe.bind((host, 0))
    except OSError:
        return False
    return True


def _probe(address: Any, timeout: float = 5.0) -> None:
    """Fail fast, with a ConfigError naming it, on an address that is malformed or unreachable."""
    if not isinstance(address, str) or not address.strip():
        raise ConfigError(
            f"a Ray address must be a non-empty string (got {address!r})",
            hint="for example 127.0.0.1:6379, ray://head:10001 or 'auto'",
        )
    if address == "auto":
        return
    parsed = _split(address)
    if parsed is None:
        raise ConfigError(
            f"Ray address {address!r} is not host:port",
            hint="for example 127.0.0.1:6379, ray://head:10001 or 'auto'",
        )
    try:
        socket.create_connection(parsed, timeout=timeout).close()
    except OSError as exc:
        raise ConfigError(
            f"cannot reach a Ray cluster at {address!r} ({exc})",
            hint="start one with `ray start --head --port=6379`, or check the head's host and port",
        ) from exc
