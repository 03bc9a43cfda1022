"""Ctrl-C and SIGTERM wait for a short write to finish (regrow._signals)."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from regrow import Workspace
from regrow._signals import signals_held
from regrow.testing import run_cli


def test_ctrl_c_while_the_catalog_closes_lets_it_close_then_stops(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Ctrl-C landing while a command closed the catalog's connections printed
    SQLAlchemy's traceback of a connection it could not close."""
    home = tmp_path / "ws"
    Workspace.init(home).close()
    closed: list[bool] = []
    close = Workspace.close

    def interrupted_close(self: Workspace) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # lands while the connections close
        time.sleep(0.05)
        close(self)
        closed.append(True)

    monkeypatch.setattr(Workspace, "close", interrupted_close)
    code, _, err = run_cli(capsys, "versions", "--home", str(home))
    assert closed == [True]  # closed whole, then stopped
    assert code == 130
    assert err.strip() == "interrupted"


def test_a_held_signal_is_handled_once_the_block_is_done_and_the_handler_put_back() -> None:
    before = signal.getsignal(signal.SIGTERM)
    seen: list[str] = []

    def handler(signum: int, frame: object) -> None:
        seen.append("handled")

    signal.signal(signal.SIGTERM, handler)
    try:
        with signals_held():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)
            seen.append("block done")
        assert seen == ["block done", "handled"]
        assert signal.getsignal(signal.SIGTERM) is handler
    finally:
        signal.signal(signal.SIGTERM, before)
