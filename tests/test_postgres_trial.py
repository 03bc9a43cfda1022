"""Fixes from a team's trial on a shared PostgreSQL catalog (each also checked on SQLite).

A forced promotion no longer reads as history changed outside regrow; a plan whose run was
killed can be run again once the run is abandoned (it stayed 'running' for ever); a URL naming
a PostgreSQL driver that is not installed is an error, not a traceback; a second workspace on
a shared catalog is warned when its store lacks the catalog's artifacts.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression

from regrow import Member, System, Workspace
from regrow.catalog.db import create_engine_for
from regrow.demo import make_window
from regrow.errors import CatalogError, ConfigError
from regrow.plan.actions import Refit
from regrow.plan_runs import manual_plan
from regrow.testing import run_cli_captured as run


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A catalog URL of its own: an SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared' / 'catalog.db'}"
    else:
        yield request.getfixturevalue("postgres_url")


def system() -> System:
    return System(
        "churn",
        target="churned",
        components=[
            Member("geo", LogisticRegression(), inputs=["distance_km", "network_quality"]),
        ],
    )


@pytest.fixture
def trained(tmp_path: Path, catalog_url: str) -> Iterator[Workspace]:
    with Workspace.init(tmp_path / "ws", catalog_url=catalog_url) as ws:
        snap = ws.snapshot(make_window(400, start="2026-01-01", days=30, seed=0), name="old")
        ws.train(system(), snap, workers=1)
        yield ws


def test_a_forced_promotion_is_no_alias_history_problem(trained: Workspace) -> None:
    trained.promote("churn:v1", reason="hotfix", force=True)
    assert trained.catalog.alias_history("churn", "champion")[0].kind == "force"
    problems = [p for p in trained.doctor(quick=True).problems if p.kind == "alias-history"]
    # it read "move r1 to ... has no audit event" and "restore the catalog from a backup"
    assert problems == []


def test_a_plan_whose_run_was_killed_runs_again_after_the_doctor(trained: Workspace) -> None:
    ws, catalog = trained, trained.catalog
    recent = ws.snapshot(make_window(300, start="2026-03-01", days=10, seed=1), name="recent")
    plan = manual_plan(ws._services(), "churn:v1", recent, [Refit("geo")])
    # what `regrow run PLAN` leaves when its process is killed (-9) after its run started
    catalog.move_plan(plan.id, expected="proposed", status="running")
    dead = catalog.start_run(
        system="churn", kind="plan", seed=0, environment={}, params={"plan": plan.id}
    )
    catalog.leases.hold_run(dead.id, lease_seconds=1, holder={"host": "gone", "pid": 4321})
    time.sleep(1.2)  # the lease lapses
    with pytest.raises(CatalogError) as refused:
        ws.run_plan(plan.id)
    # it said "another run may have taken it", with nothing running
    assert "stopped renewing its lease" in refused.value.message
    assert "doctor --repair" in refused.value.hint
    report = ws.doctor(quick=True, repair=True)
    assert [p.kind for p in report.problems] == ["stuck-run"]
    record = catalog.get_plan(plan.id)
    assert record.status == "failed"  # was still 'running': refused for ever
    assert record.outcome["interrupted"] is True
    assert record.outcome["run_id"] == dead.id
    code, out, _ = run("plans", "show", plan.id[:12], "--home", str(ws.home))
    assert (code, "interrupted: finished components are kept" in out) == (0, True), out
    again = ws.run_plan(plan.id)
    assert again.result.trained == ["geo"]
    assert catalog.get_plan(plan.id).status == "executed"
    assert catalog.verify_audit() > 0


def test_a_forced_promotion_passes_the_cli_doctor(trained: Workspace) -> None:
    home = str(trained.home)
    code, _, err = run("promote", "churn:v1", "--force", "--reason", "hotfix", "--home", home)
    assert code == 0, err
    code, out, err = run("doctor", "--quick", "--home", home)
    assert (code, "alias-history" in out + err) == (0, False), out + err


def test_a_driver_that_is_not_installed_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown PostgreSQL driver 'nosuch'"):
        create_engine_for("postgresql+nosuch://postgres@127.0.0.1:5432/test")
    if importlib.util.find_spec("psycopg2") is not None:
        pytest.skip("psycopg2 is installed here")
    with pytest.raises(ConfigError, match="driver 'psycopg2', which is not installed") as e:
        create_engine_for("postgresql+psycopg2://postgres@127.0.0.1:5432/test")
    assert "postgresql://" in e.value.hint
    url = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"
    code, _, err = run("init", str(tmp_path / "ws"), "--catalog-url", url)
    assert (code, "Traceback" in err) == (2, False), err
    assert "psycopg2" in err


def test_a_second_workspace_without_the_shared_store_is_warned(
    trained: Workspace, tmp_path: Path, catalog_url: str
) -> None:
    home = str(tmp_path / "second")
    code, _, err = run("init", home, "--catalog-url", catalog_url)
    assert code == 0, err
    assert "must share its artifact store too" in err
    store = trained.store.url
    code, _, err = run("init", str(tmp_path / "third"), "--catalog-url", catalog_url,
                       "--store-url", store)  # fmt: skip
    assert (code, err) == (0, "")
    # init on a workspace that exists opens it: URLs given then are not used, and it says so
    code, out, err = run("init", home, "--store-url", store)
    assert code == 0, err
    assert "--store-url ignored" in err
    assert str(tmp_path / "second" / "artifacts") in out


def test_an_alias_given_where_a_system_is_asked_for(trained: Workspace) -> None:
    code, _, err = run("aliases", "churn@champion", "--home", str(trained.home))
    assert code == 2
    assert "takes a system's name: 'churn'" in err


def test_a_workspace_whose_catalog_url_finds_no_catalog_is_refused_not_made_empty(
    trained: Workspace, catalog_url: str
) -> None:
    """A misspelt schema in a seat's catalog URL made PostgreSQL create the schema, migrate
    it, and show an empty catalog (exit 0); a moved SQLite file did the same."""
    home = trained.home
    trained.close()
    config = home / "config.toml"
    schema = catalog_url.split("search_path%3D", 1)[-1].split("+", 1)[0]
    wrong = (
        catalog_url.replace(schema, schema + "x")  # the schema's name, misspelt
        if catalog_url.startswith("postgresql")
        else catalog_url.replace("catalog.db", "catalog-moved.db")
    )
    config.write_text(config.read_text().replace(catalog_url, wrong))
    said = "is empty: no regrow catalog is in that" if "postgresql" in wrong else "does not exist"
    with pytest.raises(ConfigError, match=said) as caught:
        Workspace.open(home)
    assert "$REGROW_CATALOG_URL" in (caught.value.hint or "")
    code, out, err = run("versions", "--home", str(home))
    assert code == 2
    assert said in err
    assert out == ""
    if not catalog_url.startswith("postgresql"):  # nor an empty file made at its path
        assert not Path(wrong.removeprefix("sqlite:///")).exists()
    if catalog_url.startswith("postgresql"):  # the misspelt schema was not created
        import sqlalchemy as sa

        engine = create_engine_for(catalog_url)
        try:
            with engine.connect() as conn:
                found = conn.execute(
                    sa.text("SELECT count(*) FROM pg_namespace WHERE nspname = :s"),
                    {"s": schema + "x"},
                ).scalar()
        finally:
            engine.dispose()
        assert found == 0
    config.write_text(config.read_text().replace(wrong, catalog_url))
    with Workspace.open(home) as ws:  # the right URL opens it as it was
        assert ws.catalog.list_systems() == ["churn"]
