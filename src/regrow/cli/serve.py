"""`regrow serve` (the Open Inference Protocol v2 app on uvicorn) and `regrow predict`."""

from __future__ import annotations

import copy
import errno
import json
import os
import signal
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.text import Text

from regrow.cli._app import Home, Port, Stopped, app, err, out, workspace
from regrow.errors import ConfigError

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog
    from regrow.config import Config
    from regrow.serve.targets import Target

__all__ = ["predict", "serve"]

Model = Annotated[
    list[str] | None,
    typer.Option(
        "--model",
        help="SYSTEM@ALIAS (followed as it moves) or SYSTEM:vN to serve, repeatable "
        "(default: \\[serve] models, else every system's champion).",
    ),
]


@app.command()
def serve(
    home: Home = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Port = 8080,
    workers: Annotated[
        int, typer.Option(min=1, help="Worker processes, each a replica with its own models.")
    ] = 1,
    model: Model = None,
    log_level: Annotated[
        str,
        typer.Option(
            help="Log level of the server's lines (uvicorn's and regrow's, on stderr): "
            "critical, error, warning, info (adds the rollouts' moves, the hot swaps, and an "
            "access line per request on stdout), debug."
        ),
    ] = "warning",
) -> None:
    r"""Serve models over the Open Inference Protocol v2 (REST), with feedback and metrics.

    Every replica (worker, or server on another machine over the same catalog) follows its
    aliases: a promotion or rollback is served within \[serve] poll_seconds. Rollouts under
    way of the aliases served are routed, and stepped every \[serve] rollout_step_seconds
    (the serving identity needs the operator role to step; 0 turns it off); --log-level info
    shows their moves. Ctrl-C or SIGTERM stops it cleanly, flushing the prediction log.
    """
    from regrow.config import find_home

    _check_log_level(log_level)
    from regrow.config import Config

    config = Config.load(find_home(home))
    sock = _listen(host, port)
    try:
        url = f"http://{_shown(host)}:{sock.getsockname()[1]}"
        if workers == 1:
            _serve_one(config, model, sock, url, log_level)
        else:
            _serve_many(config, model, sock, url, workers, log_level)
    finally:
        sock.close()


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (uvicorn serves on it; every worker shares it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        # the name does not resolve, or the address is not one of this machine's
        unknown_host = isinstance(exc, socket.gaierror) or exc.errno == errno.EADDRNOTAVAIL
        raise ConfigError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            hint="give --host an address of this machine (127.0.0.1, 0.0.0.0 for every "
            "interface) or a name that resolves to one"
            if unknown_host
            else "choose another --port (or --port 0 for any free one), or stop what uses it",
        ) from None
    sock.set_inheritable(True)
    return sock


def _shown(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _serve_one(
    config: Config, models: list[str] | None, sock: socket.socket, url: str, log_level: str
) -> None:
    import logging.config

    import uvicorn

    from regrow.serve.app import create_app, freeze_heap

    logging.config.dictConfig(_log_config(log_level))  # what loading the models says, too
    application = create_app(config, models=models)
    freeze_heap()
    state = application.state.regrow
    try:
        for slot in state.host.slots:
            note = _rollout_note(state.host.catalog, slot.target)
            out.print(f"serving {slot.target.label} ({slot.current.ref}{note}) on {url}")
        server = uvicorn.Server(_uvicorn_config(application, log_level))
        _run_stopping_cleanly(lambda: server.run(sockets=[sock]))
    finally:
        state.close()


def _serve_many(
    config: Config,
    models: list[str] | None,
    sock: socket.socket,
    url: str,
    workers: int,
    log_level: str,
) -> None:
    from uvicorn.supervisors import Multiprocess

    from regrow.serve.app import MODELS_ENV
    from regrow.serve.host import Target, default_targets

    with workspace(config.home) as ws:
        refs = models or ws.config.serve.models
        targets = [Target.parse(m) for m in refs] if refs else default_targets(ws.catalog)
        held = {
            t.label: ws.catalog.get_system_version(t.label).ref + _rollout_note(ws.catalog, t)
            for t in targets
        }
    if not targets:
        raise ConfigError(
            "nothing to serve: no system has a 'champion' alias",
            hint="promote a version (regrow promote churn:v1), or pass --model SYSTEM@ALIAS",
        )
    for label, ref in held.items():
        out.print(f"serving {label} ({ref}) on {url}")
    os.environ["REGROW_HOME"] = str(config.home)
    if models:
        os.environ[MODELS_ENV] = json.dumps(models)
    cfg = _uvicorn_config("regrow.serve.app:app_from_env", log_level, workers=workers)

    class Supervisor(Multiprocess):
        interrupted = False

        def handle_int(self) -> None:
            Supervisor.interrupted = True
            super().handle_int()

    Supervisor(cfg, sockets=[sock]).run()
    if Supervisor.interrupted:
        raise _stopped()


def _rollout_note(catalog: Catalog, target: Target) -> str:
    """``"; rollout ID (MODE, STATE, ...)"`` for a rollout under way of ``target``'s alias."""
    if target.alias is None:
        return ""
    record = catalog.rollouts.active(target.system, target.alias)
    if record is None:
        return ""
    candidate = catalog.get_system_version(record.candidate_id).ref
    note = f"; rollout {record.id[:12]} ({record.mode}, {record.state}) to {candidate}"
    if record.state == "pending":
        return note
    return f"{note}, step {record.step + 1}/{len(record.steps)}, share {record.share:.0%}"


def _check_log_level(log_level: str) -> None:
    """Refuse a ``--log-level`` uvicorn does not know, naming it."""
    if log_level not in ("critical", "error", "warning", "info", "debug"):
        raise ConfigError(
            f"unknown --log-level {log_level!r}", hint="use critical, error, warning, info or debug"
        )


def _log_config(log_level: str) -> dict[str, Any]:
    """uvicorn's logging configuration, plus a handler for regrow's own loggers at
    ``log_level`` (on stderr, as uvicorn's lines): uvicorn configures only its own loggers,
    and every worker applies this.

    >>> _log_config("info")["loggers"]["regrow"]
    {'handlers': ['regrow'], 'level': 'INFO', 'propagate': False}
    """
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["handlers"]["regrow"] = {
        "formatter": "default",
        "class": "logging.StreamHandler",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["regrow"] = {
        "handlers": ["regrow"],
        "level": log_level.upper(),
        "propagate": False,
    }
    return config


def _uvicorn_config(application: Any, log_level: str, *, workers: int = 1) -> Any:
    import uvicorn

    return uvicorn.Config(
        application,
        factory=isinstance(application, str),
        workers=workers,
        log_config=_log_config(log_level),
        log_level=log_level,
        access_log=log_level in ("info", "debug"),
        lifespan="on",
        timeout_graceful_shutdown=10,
    )


def _stopped() -> Stopped:
    """Exit 130 after Ctrl-C, with the one line every command gives (docs/cli.md)."""
    err.print(Text.assemble(("interrupted", "bold yellow"), "; the server stopped"))
    return Stopped(130)


def _run_stopping_cleanly(run: Any) -> None:
    """Run uvicorn; after it shut down on SIGTERM exit 0, on SIGINT (Ctrl-C) 130.

    uvicorn catches both, shuts down (the app's shutdown flushes the prediction log), then
    raises the signal again under the handlers it found: these. The server runs with
    Python's garbage-collection thresholds (:data:`~regrow.cli._app.PYTHON_GC`): many short
    pauses, not a few long ones in the middle of a request.
    """
    import gc

    from regrow.cli._app import PYTHON_GC

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(0) if signum == signal.SIGTERM else _stopped()

    before = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    thresholds = gc.get_threshold()
    gc.set_threshold(*PYTHON_GC)
    try:
        run()
    finally:
        gc.set_threshold(*thresholds)
        for s, handler in before.items():
            signal.signal(s, handler)


@app.command()
def predict(
    version: Annotated[str, typer.Argument(help="VERSION (churn:v2) or SYSTEM@ALIAS.")],
    file: Annotated[Path, typer.Argument(help="Rows to score: .csv, .parquet, or .json.")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Where to write: .csv, .parquet or .json.")
    ],
    home: Home = None,
) -> None:
    """Score a file with a version, on the same path as `regrow serve` (batch scoring).

    A table gets the file's columns followed by predict (and proba__<class> per class); a
    .json file is an Open Inference Protocol request body, answered with a response body.
    """
    from regrow.serve.scoring import score_file

    with workspace(home) as ws:
        done = score_file(ws, version, file, output)
    err.print(f"scored {done.rows:,} rows with {done.version} -> {done.output}")
