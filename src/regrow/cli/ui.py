"""`regrow ui`: the dashboard (:mod:`regrow.ui`) on its own, without serving any model."""

from __future__ import annotations

from typing import Annotated

import typer

from regrow.cli._app import Home, app, out

__all__ = ["ui"]


@app.command()
def ui(
    home: Home = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free one).")] = 8090,
    log_level: Annotated[
        str,
        typer.Option(help="uvicorn's log level: critical, error, warning, info, debug."),
    ] = "warning",
) -> None:
    """Open the dashboard in a browser: systems, drift, plans and runs, components, rollouts,
    governance, lineage and audit, read from the workspace (`regrow serve` serves it too,
    under /ui). Rollout buttons need an API token of the operator role."""
    from regrow.cli.serve import _listen, _log_config, _run_stopping_cleanly, _shown
    from regrow.config import Config, resolve_home
    from regrow.errors import ConfigError

    if log_level not in ("critical", "error", "warning", "info", "debug"):
        raise ConfigError(
            f"unknown --log-level {log_level!r}", hint="use critical, error, warning, info or debug"
        )
    import uvicorn

    from regrow.ui import create_ui_app

    application = create_ui_app(Config.load(resolve_home(home)))
    sock = _listen(host, port)
    try:
        url = f"http://{_shown(host)}:{sock.getsockname()[1]}/ui"
        out.print(f"dashboard of {application.state.ui.workspace.home} on {url}")
        config = uvicorn.Config(
            application,
            log_config=_log_config(log_level),
            log_level=log_level,
            access_log=log_level in ("info", "debug"),
            lifespan="on",
            timeout_graceful_shutdown=5,
        )
        server = uvicorn.Server(config)
        _run_stopping_cleanly(lambda: server.run(sockets=[sock]))
    finally:
        sock.close()
