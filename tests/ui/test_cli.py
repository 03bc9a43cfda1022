"""`regrow ui`: the dashboard served alone by its own process, on a free port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from typing import Any

import pytest

from regrow.cli import main


def test_regrow_ui_serves_the_dashboard_until_stopped(demo_copy: Any) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "regrow.cli", "ui", "--home", str(demo_copy.home), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "dashboard of HOME on http://127.0.0.1:PORT/ui"
        assert " on http://127.0.0.1:" in line, line
        url = line.rsplit(" on ", 1)[1].strip()
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as answer:
                    page = answer.read().decode()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.2)
        assert "churn@champion" in page
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err


def test_regrow_ui_on_a_missing_workspace_says_so(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["ui", "--home", str(tmp_path / "nowhere")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "error:" in err
    assert "hint:" in err
    assert "Traceback" not in err
