"""Migration 0009 adds the rollouts' ``lanes`` column and removes it again, on SQLite and
PostgreSQL; rollouts stored before it read back with no lanes; an A/B rollout's lanes are
stored and dropped on both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from regrow import Workspace
from regrow.catalog import Catalog
from regrow.catalog.db import MIGRATIONS, create_engine_for, current_revision, upgrade, writer
from regrow.catalog.records import SystemVersionRecord
from regrow.catalog.rollouts import Rollouts
from regrow.errors import CatalogError, ConfigError
from regrow.fingerprint import hash_json
from regrow.rollout import machine


def _migrate(engine: sa.Engine, direction: str, to: str) -> None:
    with writer(engine).begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        getattr(command, direction)(config, to)


def _columns(engine: sa.Engine) -> set[str]:
    return {c["name"] for c in sa.inspect(engine).get_columns("rollouts")}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/catalog.db"
    found: str = request.getfixturevalue("postgres_url")
    return found


def test_0009_adds_and_removes_the_lanes_column(url: str) -> None:
    engine = create_engine_for(url)
    try:
        upgrade(engine)
        assert "lanes" in _columns(engine)
        _migrate(engine, "downgrade", "0008")
        assert "lanes" not in _columns(engine)
        assert current_revision(engine) == "0008"
        _migrate(engine, "upgrade", "head")
        assert "lanes" in _columns(engine)
    finally:
        engine.dispose()
    with Catalog(url) as catalog:
        assert Rollouts(catalog).list() == []


def test_a_rollout_stored_before_0009_has_no_lanes(ws: Workspace) -> None:
    r = machine.start(ws, "toy:v2", steps="10,100")
    url = ws.catalog.url
    ws.catalog.close()
    engine = create_engine_for(url)
    try:
        _migrate(engine, "downgrade", "0008")
        _migrate(engine, "upgrade", "0009")
    finally:
        engine.dispose()
    with Catalog(url) as catalog:
        again = Rollouts(catalog).get(r.id)
        assert (again.lanes, again.share, again.candidates) == ((), 0.1, (r.candidate_id,))


def _version(catalog: Catalog, n: int) -> SystemVersionRecord:
    component = catalog.add_component_version(
        system="churn", component="model", kind="member", fingerprint=hash_json(["m", n]),
        parts={"n": n}, artifact=None, run_id=None, snapshot_id=None, seed=0, train_seconds=0.1,
    )  # fmt: skip
    return catalog.add_system_version(
        system="churn", manifest={"model": component.id}, spec={"components": ["model"]},
        parent_id=None, run_id=None, snapshot_id=None,
    )  # fmt: skip


def test_ab_lanes_are_stored_and_dropped(url: str) -> None:
    with Catalog(url) as catalog:
        stable, a, b = (_version(catalog, n) for n in range(3))
        catalog.move_alias("churn", "champion", stable.id)
        rollouts = Rollouts(catalog)
        with pytest.raises(ConfigError, match="one candidate"):
            rollouts.start(system="churn", alias="champion", stable_id=stable.id,
                           candidate_id=a.id, mode="split", steps=(0.5,), min_requests=1,
                           lanes=[a.id, b.id])  # fmt: skip
        with pytest.raises(CatalogError, match="already holds"):
            rollouts.start(system="churn", alias="champion", stable_id=stable.id,
                           candidate_id=a.id, mode="ab", steps=(0.5,), min_requests=1,
                           lanes=[a.id, stable.id])  # fmt: skip
        r = rollouts.start(system="churn", alias="champion", stable_id=stable.id,
                           candidate_id=a.id, mode="ab", steps=(0.2, 0.8), min_requests=1,
                           lanes=[a.id, b.id])  # fmt: skip
        r = rollouts.transition(r.id, "progressing", action="begin", expected_revision=1, step=0)
        assert [(x.name, x.version_id, x.share) for x in r.lanes] == [
            ("candidate", a.id, 0.2),
            ("candidate-2", b.id, 0.2),
        ]
        assert r.candidates == (a.id, b.id)
        dropped = rollouts.transition(r.id, "progressing", action="drop_lane",
                                      expected_revision=r.revision, drop=["candidate"])  # fmt: skip
        assert [(x.dropped, x.share) for x in rollouts.get(r.id).lanes] == [
            (True, 0.0),
            (False, 0.2),
        ]
        assert (dropped.state, dropped.step) == ("progressing", 0)
        with pytest.raises(ConfigError, match="no lane 'candidate-9'"):
            rollouts.transition(
                r.id,
                "progressing",
                action="drop_lane",
                expected_revision=dropped.revision,
                drop=["candidate-9"],
            )
        moved = rollouts.transition(r.id, "progressing", action="advance",
                                    expected_revision=dropped.revision, step=1)  # fmt: skip
        assert [x.share for x in moved.lanes] == [0.0, pytest.approx(1 / 3)]  # at most 1/(K+1)
        event = rollouts.history(r.id)[-2]
        assert event.action == "rollout.drop_lane"
        assert event.payload["lanes"][0]["dropped"] is True
