"""Run the serving app on a loopback port in a background thread (the demo, notebooks, tests).

``regrow serve`` is the way to serve in production: its own process, one or more workers.
:func:`running` is for when the caller wants to talk to a real server from the same Python
process: the app answers real HTTP on ``127.0.0.1`` (a free port), its poller follows alias
moves and its prediction log is written, and leaving the ``with`` block shuts it down as
SIGTERM would (in-flight requests finish, the log is flushed).

>>> import tempfile, urllib.request, json, pandas as pd
>>> from sklearn.linear_model import LogisticRegression
>>> from regrow import Member, System, Workspace
>>> from regrow.serve.app import create_app
>>> ws = Workspace.init(tempfile.mkdtemp())
>>> snap = ws.snapshot(pd.DataFrame({"x": [0.0, 1, 2, 3], "y": [0, 0, 1, 1]}), name="toy")
>>> v1 = ws.train(System("toy", target="y", components=[
...     Member("m", LogisticRegression(), inputs=["x"])]), snap).version
>>> with running(create_app(ws, models=[v1.ref])) as url:
...     with urllib.request.urlopen(f"{url}/v2/health/ready") as answer:
...         json.load(answer)
{'ready': True}
>>> ws.close()
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from regrow.errors import ConfigError

__all__ = ["running"]


@contextmanager
def running(app: Any, *, host: str = "127.0.0.1", timeout: float = 30.0) -> Iterator[str]:
    """Serve ``app`` (from :func:`~regrow.serve.app.create_app`) on a free port of ``host``
    in a background thread; yields its base URL (``http://127.0.0.1:PORT``)."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, 0))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {host!r}: {exc}", hint="use 127.0.0.1") from exc
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", access_log=False, lifespan="on", timeout_graceful_shutdown=10
    )
    server = uvicorn.Server(config)
    failed: list[BaseException] = []

    def serve() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # reported to the caller below
            failed.append(exc)

    thread = threading.Thread(target=serve, name="regrow-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if failed or not thread.is_alive():
            sock.close()
            cause = failed[0] if failed else None
            raise ConfigError(
                f"the server did not start: {cause!r}", hint="see the log above"
            ) from cause
        if time.monotonic() > deadline:
            server.should_exit = True
            thread.join(timeout)
            sock.close()
            raise ConfigError(f"the server did not start within {timeout:g} s")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
