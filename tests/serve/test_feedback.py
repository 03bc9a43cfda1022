"""Feedback labels through the Workspace (``Workspace.feedback``): the shapes labels come in,
upserts on SQLite and PostgreSQL, the operator role, one audit event per call."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from regrow import Member, System, Workspace
from regrow.errors import DataError, PermissionDenied


def _train_toy(ws: Workspace) -> None:
    system = System("toy", target="y", components=[Member("m", LogisticRegression(), ["x"])])
    data = pd.DataFrame({"x": [0.0, 1, 2, 3], "y": [0, 0, 1, 1]})
    ws.train(system, ws.snapshot(data, name="toy"))


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite workspace with a version of ``toy``, built once per module (tests get copies)."""
    home = tmp_path_factory.mktemp("feedback") / "ws"
    with Workspace.init(home) as ws:
        _train_toy(ws)
    return home


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ws(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Workspace]:
    """A workspace with a version of ``toy``, its catalog on SQLite or PostgreSQL."""
    if request.param == "sqlite":
        shutil.copytree(request.getfixturevalue("sqlite_template"), tmp_path / "ws")
        with Workspace.open(tmp_path / "ws") as opened:
            yield opened
        return
    url = request.getfixturevalue("postgres_url")
    with Workspace.init(tmp_path / "ws", catalog_url=url) as opened:
        _train_toy(opened)
        yield opened


@pytest.mark.parametrize(
    "labels",
    [
        {"r1": 1, "r2": 0},
        [("r1", 1), ("r2", 0)],
        [("r1", 0, 1), ("r2", 0, 0)],
        [{"id": "r1", "label": 1}, {"request_id": "r2", "row": 0, "label": 0}],
        pd.DataFrame({"id": ["r1", "r2"], "label": [1, 0]}),
        pd.DataFrame({"request_id": ["r1", "r2"], "row": [0, 0], "label": [1, 0]}),
    ],
    ids=["mapping", "pairs", "triples", "dicts", "frame", "frame-with-rows"],
)
def test_labels_come_in_every_shape_a_caller_has(ws: Workspace, labels: Any) -> None:
    assert ws.feedback("toy", labels) == 2
    assert ws.catalog.predictions.labels("toy", ["r1", "r2"]) == {("r1", 0): 1, ("r2", 0): 0}


def test_a_later_label_replaces_the_earlier_and_each_call_is_one_audit_event(
    ws: Workspace,
) -> None:
    assert ws.feedback("toy", [("r1", 0, 0), ("r1", 1, 1)]) == 2
    assert ws.feedback("toy", [("r1", 0, 1)]) == 1
    assert ws.catalog.predictions.labels("toy", ["r1"]) == {("r1", 0): 1, ("r1", 1): 1}
    events = [e for e in ws.catalog.audit_events() if e.action == "feedback.add"]
    assert [e.payload["labels"] for e in events] == [1, 2]
    assert {e.actor for e in events} == {ws.identity.name}
    assert ws.catalog.verify_audit() > 0


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        ([{"id": "r1"}], "label #0"),
        ([{"id": "r1", "request_id": "r1", "label": 1}], "label #0"),
        ([("r1", 0, 1), ("r2", 0, {"a": 1})], "label #1"),
        ("r1", "labels must be"),
        (5, "labels must be"),
    ],
)
def test_malformed_labels_are_named_and_nothing_is_stored(
    ws: Workspace, labels: Any, match: str
) -> None:
    with pytest.raises(DataError, match=match):
        ws.feedback("toy", labels)
    assert ws.catalog.predictions.labels("toy", ["r1", "r2"]) == {}


def test_sending_feedback_needs_the_operator_role(ws: Workspace) -> None:
    ws.add_identity("viv", "viewer")
    _, token = ws.create_token("viv")
    with Workspace.open(ws.home, token=token) as viewer, pytest.raises(PermissionDenied):
        viewer.feedback("toy", {"r1": 1})
    assert ws.catalog.predictions.labels("toy", ["r1"]) == {}
