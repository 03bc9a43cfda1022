"""`regrow ui`: the dashboard (:mod:`regrow.ui`) on its own, without serving any model."""

from __future__ import annotations

from typing import Annotated

import typer

from regrow.cli._app import Home, Port, app, out

__all__ = ["ui"]


@app.command()
def ui(
    home: Home = None,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Port = 8090,
    log_level: Annotated[
        str,
        typer.Option(help="uvicorn's log level: critical, error, warning, info, debug."),
    ] = "warning",
) -> None:
    """Open the dashboard in a browser: systems, drift, plans and runs, components, rollouts,
    governance, lineage and audit, read from the workspace (`regrow serve` serves it too,
    under /ui). Rollout buttons need an API token of the operator role."""
    from regrow.cli.serve import (
        _check_log_level,
        _listen,
        _run_stopping_cleanly,
        _shown,
        _uvicorn_config,
    )
    from regrow.config import Config, find_home

    _check_log_level(log_level)
    import uvicorn

    from regrow.ui import create_ui_app

    application = create_ui_app(Config.load(find_home(home)))
    sock = _listen(host, port)
    try:
        url = f"http://{_shown(host)}:{sock.getsockname()[1]}/ui"
        out.print(f"dashboard of {application.state.ui.workspace.home} on {url}")
        server = uvicorn.Server(_uvicorn_config(application, log_level))
        _run_stopping_cleanly(lambda: server.run(sockets=[sock]))
    finally:
        sock.close()
