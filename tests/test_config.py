"""Workspace configuration: init, overrides, and clear errors for bad settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from regrow import Workspace
from regrow.catalog import Catalog
from regrow.config import Config
from regrow.errors import ConfigError, WorkspaceNotFound


def test_init_writes_a_config_naming_catalog_and_store(tmp_path: Path) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        assert ws.catalog.url == f"sqlite:///{tmp_path / 'ws' / 'catalog.db'}"
        assert ws.store.url.endswith("artifacts")
    text = (tmp_path / "ws" / "config.toml").read_text()
    assert 'url = "sqlite:///catalog.db"' in text
    assert 'url = "artifacts"' in text


def test_init_twice_opens_the_existing_workspace(tmp_path: Path) -> None:
    Workspace.init(tmp_path / "ws", store_url=str(tmp_path / "blobs")).close()
    with Workspace.init(tmp_path / "ws") as ws:
        assert ws.store.url == str(tmp_path / "blobs")


@pytest.mark.parametrize("existing", [False, True], ids=["new-folder", "folder-with-a-file"])
def test_a_failed_init_leaves_the_folder_as_it_was(tmp_path: Path, existing: bool) -> None:
    # A bad store URL left catalog.db without a config.toml: no workspace, but in the way.
    home = tmp_path / "ws"
    if existing:
        home.mkdir()
        (home / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="cannot open the artifact store 'nosuch://x'"):
        Workspace.init(home, store_url="nosuch://x")
    assert home.is_dir() == existing
    assert not existing or [p.name for p in home.iterdir()] == ["notes.txt"]
    Workspace.init(home).close()  # and a good init there works
    assert (home / "config.toml").is_file()


def test_a_catalog_file_that_is_not_sqlite_gets_a_hint_about_the_file(tmp_path: Path) -> None:
    # it hinted "check ... that its database server is running", of a file
    Workspace.init(tmp_path / "ws").close()
    (tmp_path / "ws" / "catalog.db").write_text("not a database")
    with pytest.raises(ConfigError, match="file is not a database") as info:
        Workspace.open(tmp_path / "ws")
    assert "is not a readable SQLite database" in str(info.value.hint)
    assert "server" not in str(info.value.hint)


def test_init_refuses_two_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from regrow.testing import run_cli

    code, _, err = run_cli(capsys, "init", str(tmp_path / "a"), "--home", str(tmp_path / "b"))
    assert code == 2
    assert "two folders for one workspace" in err
    assert not (tmp_path / "a").exists()
    assert not (tmp_path / "b").exists()


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Workspace.init(tmp_path / "ws").close()
    Catalog(f"sqlite:///{tmp_path / 'other.db'}").close()  # a catalog made elsewhere
    monkeypatch.setenv("REGROW_HOME", str(tmp_path / "ws"))
    monkeypatch.setenv("REGROW_STORE_URL", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("REGROW_CATALOG_URL", f"sqlite:///{tmp_path / 'other.db'}")
    with Workspace.open() as ws:
        assert ws.store.url == str(tmp_path / "elsewhere")
        assert ws.catalog.url == f"sqlite:///{tmp_path / 'other.db'}"
    assert (tmp_path / "other.db").is_file()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[catalog\nurl = 1", "cannot parse"),
        ('[catalgo]\nurl = "x"', r"unknown section\(s\) \['catalgo'\]"),
        ('[catalog]\npath = "x"', r"unknown key\(s\) \['path'\] in \[catalog\]"),
        ("[store]\nurl = 3", "must be a non-empty string"),
    ],
)
def test_bad_config_files_are_named(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "config.toml").write_text(content)
    with pytest.raises(ConfigError, match=message):
        Config.load(tmp_path)


def test_a_bad_catalog_url_leaves_no_workspace_behind(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        Workspace.init(tmp_path / "ws", catalog_url="notadb://nowhere")
    assert not (tmp_path / "ws").exists()


def test_open_a_missing_workspace(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceNotFound, match="regrow init"):
        Workspace.open(tmp_path)


def test_a_workspace_is_found_from_any_folder_below_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from regrow.config import find_home

    monkeypatch.delenv("REGROW_HOME", raising=False)
    Workspace.init(tmp_path / ".regrow").close()
    deep = tmp_path / "data" / "2026"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert find_home() == tmp_path / ".regrow"
    with Workspace.open() as ws:
        assert ws.home == tmp_path / ".regrow"
    # `regrow init .` makes the folder itself the workspace: found from inside it too
    Workspace.init(tmp_path / "flat").close()
    (tmp_path / "flat" / "runs").mkdir()
    monkeypatch.chdir(tmp_path / "flat" / "runs")
    assert find_home() == tmp_path / "flat"
    # another tool's config.toml above is not taken for a workspace
    other = tmp_path / "other"
    (other / "sub").mkdir(parents=True)
    (other / "config.toml").write_text('[tool]\nname = "not regrow"\n')
    monkeypatch.chdir(other / "sub")
    assert find_home() == tmp_path / ".regrow"  # the one further up
    # a .regrow folder with a broken config.toml is still the workspace: the commands then
    # name its mistakes (they went on to the workspace above, and wrote there)
    nested = tmp_path / "nested"
    Workspace.init(nested / ".regrow").close()
    path = nested / ".regrow" / "config.toml"
    path.write_text(path.read_text() + "\n[servr]\nport = 1\n")
    monkeypatch.chdir(nested)
    assert find_home() == nested / ".regrow"
    with pytest.raises(ConfigError, match="servr"):
        Workspace.open()
    path.write_text("this is [ not toml")
    with pytest.raises(ConfigError, match="cannot parse"):
        Workspace.open()
    # an explicit folder or $REGROW_HOME wins over the search
    assert find_home(tmp_path / "flat") == tmp_path / "flat"
    monkeypatch.setenv("REGROW_HOME", str(tmp_path / "flat"))
    assert find_home() == tmp_path / "flat"
    monkeypatch.delenv("REGROW_HOME")
    lone = tmp_path.parent / f"{tmp_path.name}-lone"
    lone.mkdir()
    monkeypatch.chdir(lone)
    with pytest.raises(WorkspaceNotFound, match="or any folder above it") as missing:
        Workspace.open()
    assert "regrow init" in (missing.value.hint or "")


def _bad_watch(home: Path) -> None:
    config = home / "config.toml"
    config.write_text(config.read_text() + '\n[watch]\nevery = "-5m"\nnotify_on = ["always"]\n')


def test_a_bad_watch_section_stops_only_what_reads_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A bad [watch] value failed every command (`regrow versions`, `regrow watch --status`),
    # and named one mistake per try.
    from regrow.testing import run_cli

    Workspace.init(tmp_path / "ws").close()
    _bad_watch(tmp_path / "ws")
    config = Config.load(tmp_path / "ws")
    for command in (["versions"], ["watch", "--status"]):
        code, _, err = run_cli(capsys, *command, "--home", str(tmp_path / "ws"))
        assert code == 0, err
    with pytest.raises(ConfigError) as caught:
        config.watch_for("churn")
    said = str(caught.value)
    assert "2 mistakes in" in said
    assert "[watch] every must be a span above zero, like 15m (got '-5m')" in said
    assert "[watch] notify_on must be a list of 'acted', 'waiting', 'failed', 'quiet' " in said
    assert "(got ['always'])" in said
    assert "leave the key out for its default" in (caught.value.hint or "")


def test_the_command_line_s_every_replaces_the_file_s_unread() -> None:
    config = Config(home=Path("/tmp/ws"), watch_table={"every": "-5m", "churn": {"every": "0s"}})
    assert config.watch_for("churn", every="1h", source=None).every == "1h"
    assert config.watch_for("other", every="1h").source == "served"
    with pytest.raises(
        ConfigError, match=r"--every must be a span above zero, like 15m \(got 'soon'\)"
    ):
        config.watch_for("churn", every="soon")
    with pytest.raises(ConfigError, match=r"\[watch.churn\] every must be .* \(got '0s'\)"):
        Config(home=Path("/tmp/ws"), watch_table={"churn": {"every": "0s"}}).watch_for("churn")


def test_every_mistake_of_a_config_file_is_named_at_once(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(
        "[run]\nworkers = 0\n[auth]\nos_user = 'no'\n"
        "[serve]\npoll_seconds = 0\nport = 1\ninference = 'closed'\n"
        "[watch]\nevery = '-5m'\n[watch.churn]\nlease_seconds = 1\n"
    )
    with pytest.raises(ConfigError) as caught:
        Config.load(tmp_path)
    said, hint = caught.value.message, caught.value.hint or ""
    assert said.startswith(f"7 mistakes in {str(tmp_path / 'config.toml')!r}: ")
    for part in (
        "[run] workers must be an integer >= 1 (got 0)",
        "[auth] os_user must be true or false (got 'no')",
        "unknown key(s) ['port'] in [serve]",
        "[serve] poll_seconds must be a number of seconds in (0, 3600] (got 0)",
        "[serve] inference must be one of 'open', 'token' (got 'closed')",
        "[watch] every must be a span above zero, like 15m (got '-5m')",  # named with the others
        "[watch.churn] lease_seconds must be an integer >= 10 (got 1)",
    ):
        assert part in said, part
    assert said.count(str(tmp_path)) == 1  # the file is named once
    assert "for example workers = 4" in hint
    assert "os_user = false lets only API tokens identify" in hint


def test_misspelt_sections_keys_and_backends_get_a_did_you_mean(tmp_path: Path) -> None:
    # an unknown backend loaded, and `regrow train` failed later without naming [run]
    (tmp_path / "config.toml").write_text('[run]\nbackend = "rey"\nadress = "x"\n[servr]\n')
    with pytest.raises(ConfigError) as caught:
        Config.load(tmp_path)
    said, hint = caught.value.message, caught.value.hint or ""
    assert "[run] backend must be one of 'local', 'ray' (got 'rey')" in said
    for close in ("did you mean 'ray'?", "did you mean 'address'?", "did you mean 'serve'?"):
        assert close in hint, close


def test_a_policy_setting_in_the_watch_section_is_named_as_the_policys(tmp_path: Path) -> None:
    """`persistance = 3` under [watch] said only "unknown key(s) ['persistance']"."""
    config = Config(home=tmp_path, watch_table={"persistance": 3, "every": "-5m"})
    with pytest.raises(ConfigError) as caught:
        config.watch_for("churn")
    said, hint = caught.value.message, caught.value.hint or ""
    assert "unknown key(s) ['persistance'] in [watch]" in said
    assert "'persistence' is a policy setting, not the workspace's" in said
    assert "[watch] every must be a span above zero" in said  # named with the others
    assert "set watch.persistence under `watch:` in a policy file" in hint
    assert "`regrow policy set FILE`" in hint
    plain = Config(home=tmp_path, watch_table={"sorce": "served"})
    with pytest.raises(ConfigError, match="did you mean 'source'") as other:
        plain.watch_for("churn")
    assert "policy setting" not in other.value.message
