"""The whole flow with the catalog on PostgreSQL: train, partial update, promote, lineage."""

from __future__ import annotations

from pathlib import Path

import pytest
from sklearn.linear_model import LogisticRegression

from regrow import Ensemble, Member, System, Workspace
from regrow.demo import make_window

pytestmark = pytest.mark.postgres


def build() -> System:
    return System(
        "churn",
        target="churned",
        components=[
            Member("account", LogisticRegression(), inputs=["tenure_months", "monthly_fee"]),
            Member("geo", LogisticRegression(), inputs=["distance_km", "network_quality"]),
            Ensemble("ensemble", weights={"account": 1, "geo": 1}),
        ],
    )


def test_partial_update_on_a_postgres_catalog(tmp_path: Path, postgres_url: str) -> None:
    with Workspace.init(tmp_path / "ws", catalog_url=postgres_url) as ws:
        assert ws.catalog.dialect == "postgresql"
        old = ws.snapshot(make_window(1200, start="2026-01-01", days=30, seed=0), name="old")
        v1 = ws.train(build(), old, workers=1).version
        ws.promote(v1.ref, reason="first", force=True)
        assert ws.train(build(), old, workers=1).trained == []
        new = ws.snapshot(
            make_window(600, start="2026-07-01", days=10, seed=1, expanded=True), name="new"
        )
        update = ws.update("churn@champion", new, components=["geo"], workers=1)
        assert update.trained == ["geo", "ensemble"]
        assert update.reused == ["account"]
        ws.promote(update.version.ref, reason="drift", force=True)
        assert ws.rollback("churn", reason="check").version_id == v1.id
        report = ws.lineage(update.version.ref)
        assert report["parents"][0]["version"] == "churn:v1"
        assert ws.catalog.verify_audit() > 0
    # Reopening the workspace reads the PostgreSQL catalog back from config.toml.
    with Workspace.open(tmp_path / "ws") as again:
        assert again.catalog.get_system_version("churn@champion").id == v1.id
