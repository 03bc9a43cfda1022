"""`regrow serve`: what it prints, how it stops, its errors; and the [serve] settings."""

from __future__ import annotations

import signal
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from regrow import Workspace
from regrow.config import Config, ServeSettings
from regrow.errors import ConfigError
from regrow.testing import run_cli

Body = Callable[..., dict[str, Any]]


def test_serve_prints_what_it_serves_and_a_sigterm_stops_it_flushing_the_log(
    serve_home: Path, live_server: Callable[..., Any], infer_body: Body
) -> None:
    server = live_server(serve_home)
    for i in range(3):
        body = infer_body(2, request_id=f"cli-{i}")
        assert httpx.post(f"{server.url}/v2/models/shop/infer", json=body).status_code == 200
    assert server.stop(signal.SIGTERM) == 0
    output = server.output()
    assert f"serving shop@champion (shop:v1) on {server.url}" in output
    assert "Traceback" not in output
    with Workspace.open(serve_home) as ws:
        assert sum(f.rows for f in ws.catalog.predictions.files("shop")) == 6


def test_ctrl_c_stops_it_with_status_130(serve_home: Path, live_server: Callable[..., Any]) -> None:
    server = live_server(serve_home, "--model", "shop:v2")
    meta = httpx.get(f"{server.url}/v2/models/shop").json()
    assert meta["versions"] == ["v2"]
    assert server.stop(signal.SIGINT) == 130
    assert "Traceback" not in server.output()
    assert "finished components are kept" not in server.output()  # that line is about runs
    assert "interrupted; the server stopped" in server.output()  # the one line (docs/cli.md)


def test_several_workers_serve_the_same_models(
    serve_home: Path, live_server: Callable[..., Any], infer_body: Body
) -> None:
    server = live_server(serve_home, "--workers", "2", timeout=120)
    with httpx.Client() as client:
        for _ in range(6):
            body = client.post(f"{server.url}/v2/models/shop/infer", json=infer_body(1)).json()
            assert body["parameters"]["system_version"] == "shop:v1"
    assert server.stop(signal.SIGTERM) == 0
    assert f"serving shop@champion (shop:v1) on {server.url}" in server.output()


def test_a_port_in_use_is_an_error_without_a_traceback(
    serve_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run_cli(capsys, "serve", "--home", str(serve_home), "--port", str(port))
    assert code == 2
    assert f"cannot listen on 127.0.0.1:{port}" in err
    assert "choose another --port" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["serve", "--port", "-1"], "greater than or equal to 0"),
        (["ui", "--port", "99999"], "less than or equal to 65535"),
        (["serve", "--host", "no.such.host.invalid"], "give --host an address of this machine"),
    ],
)
def test_a_port_or_host_that_cannot_be_listened_on_is_an_error_without_a_traceback(
    serve_home: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    # a port out of range was an OverflowError traceback from bind()
    code, _, err = run_cli(capsys, *args, "--home", str(serve_home))
    assert code == 2
    assert message in " ".join(err.split())
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("nohome", [], "no regrow workspace"),
        ("config", [], "[serve] poll_seconds must be a number of seconds"),
        ("unknown-key", [], "unknown key(s) ['port'] in [serve]"),
        ("", ["--model", "shop"], "cannot serve 'shop'"),
        ("", ["--model", "shop@challenger"], "unknown alias 'shop@challenger'"),
        ("", ["--log-level", "loud"], "unknown --log-level 'loud'"),
        ("no-champion", [], "nothing to serve"),
    ],
)
def test_bad_homes_configs_and_models_are_errors_with_a_hint(
    serve_home: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    setup: str,
    args: list[str],
    message: str,
) -> None:
    home = serve_home
    config = serve_home / "config.toml"
    if setup == "nohome":
        home = tmp_path / "nowhere"
    elif setup == "config":
        config.write_text(config.read_text() + '\n[serve]\npoll_seconds = "soon"\n')
    elif setup == "unknown-key":
        config.write_text(config.read_text() + "\n[serve]\nport = 80\n")
    elif setup == "no-champion":
        home = tmp_path / "empty"
        Workspace.init(home).close()
    code, _, err = run_cli(capsys, "serve", "--home", str(home), "--port", "0", *args)
    assert code == 2, err
    assert message in err
    assert "hint:" in err
    assert "Traceback" not in err


def test_serve_settings_default_validate_and_round_trip(tmp_path: Path) -> None:
    assert ServeSettings() == ServeSettings.parse({})
    assert ServeSettings().models is None
    settings = ServeSettings.parse(
        {"models": ["churn@champion", "fraud:v3"], "inference": "token", "poll_seconds": 1,
         "max_request_bytes": 1024, "max_batch_rows": 10, "log_predictions": False}
    )  # fmt: skip
    assert settings.models == ("churn@champion", "fraud:v3")
    config = Config(home=tmp_path, serve=settings)
    config.write()
    assert Config.load(tmp_path).serve == settings
    Config(home=tmp_path).write()
    assert "[serve]" not in (tmp_path / "config.toml").read_text()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"models": []}, "models must be a non-empty list"),
        ({"models": ["churn"]}, "models must be a non-empty list"),
        ({"models": "churn@champion"}, "models must be a non-empty list"),
        ({"inference": "closed"}, "inference must be one of 'open', 'token' (got 'closed')"),
        ({"poll_seconds": 0}, "poll_seconds must be a number of seconds in (0, 3600] (got 0)"),
        ({"poll_seconds": True}, "poll_seconds must be"),
        ({"max_request_bytes": 0}, "max_request_bytes must be an integer >= 1 (got 0)"),
        ({"max_batch_rows": 2.5}, "max_batch_rows must be an integer >= 1 (got 2.5)"),
        ({"log_predictions": "yes"}, "log_predictions must be true or false (got 'yes')"),
        ({"workers": 2}, "unknown key(s) ['workers'] in [serve]"),
    ],
)
def test_bad_serve_settings_name_the_key_and_value(section: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ServeSettings.parse(section)
    assert message in str(caught.value)
