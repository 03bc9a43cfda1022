"""A changed data shape flows through training, monitoring, evaluation and serving via adapters.

Issue #17's figure: a renamed column, a widened type and a new category each reach every step
of the loop through the system's boundary adapters, with 0 components retrained and
predictions identical to the unchanged data's. The changed data here is the training data
itself in its new shape, so the adapted rows equal the old ones exactly.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from regrow import System, Workspace
from regrow.data.adapters import Adapter, Cast, MapCategories, Rename
from regrow.errors import DataError, DataQualityWarning

ROWS = 300


@dataclass(frozen=True)
class Change:
    """A new data shape, the adapter that bridges it, and how a request carries it."""

    name: str
    reshape: Callable[[pd.DataFrame], pd.DataFrame]
    adapter: Adapter
    tensor: Callable[[pd.DataFrame], dict[str, Any]]


def _renamed(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(columns={"plan": "tier"})


def _widened(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype({"age": "float64"})


def _new_category(frame: pd.DataFrame) -> pd.DataFrame:
    # Upstream split "team" into "team" and "enterprise"; the model knows only "team".
    out = frame.copy()
    team = out.index[out["plan"] == "team"]
    out.loc[team[::2], "plan"] = "enterprise"
    return out


def _bytes(name: str, values: pd.Series) -> dict[str, Any]:
    return {"name": name, "shape": [len(values)], "datatype": "BYTES", "data": values.tolist()}


CHANGES = [
    Change("renamed", _renamed, Rename("plan", source="tier"), lambda f: _bytes("tier", f["tier"])),
    Change(
        "widened",
        _widened,
        Cast("age", "int", min=0, max=130),
        lambda f: {"name": "age", "shape": [len(f)], "datatype": "FP64", "data": f["age"].tolist()},
    ),
    Change(
        "new category",
        _new_category,
        MapCategories("plan", known=("free", "pro", "team"), unseen="team"),
        lambda f: _bytes("plan", f["plan"]),
    ),
]


def _request(frame: pd.DataFrame, change: Change) -> dict[str, Any]:
    tensors = {
        "age": {"name": "age", "shape": [len(frame)], "datatype": "INT64"},
        "income": {"name": "income", "shape": [len(frame)], "datatype": "FP64"},
        "plan": {"name": "plan", "shape": [len(frame)], "datatype": "BYTES"},
    }
    for name, tensor in tensors.items():
        if name in frame.columns:
            tensor["data"] = frame[name].tolist()
    changed = change.tensor(frame)
    tensors = {k: v for k, v in tensors.items() if "data" in v and k != changed["name"]}
    return {"inputs": [*tensors.values(), changed]}


@pytest.mark.parametrize("change", CHANGES, ids=lambda c: c.name)
def test_a_changed_shape_is_bridged_everywhere_with_nothing_retrained(
    change: Change,
    tmp_path: Path,
    shop_rows: Callable[..., pd.DataFrame],
    shop_graph: Callable[..., System],
    serve_client: Callable[..., Any],
) -> None:
    shop_system = shop_graph
    old = shop_rows(ROWS, 0)
    new = change.reshape(old)
    home = tmp_path / "ws"
    with Workspace.init(home) as ws:
        first = ws.snapshot(old, name="shop")
        v1 = ws.train(shop_system(), first).version
        with warnings.catch_warnings():  # the schema change itself is reported, as it should
            warnings.simplefilter("ignore", DataQualityWarning)
            changed = ws.snapshot(new, name="shop", allow_schema_change=True)
        # Without the adapter the new shape is refused or read differently ...
        if change.name == "renamed":
            with pytest.raises(Exception, match="plan"):
                ws.train(shop_system(), changed)
        run = ws.train(shop_system(adapters=[change.adapter]), changed)
        # ... with it, every component is reused: the adapted rows are the old snapshot.
        assert run.run.summary["trained"] == []
        assert sorted(run.run.summary["reused"]) == sorted(shop_system().components)
        v2 = run.version
        assert v2.number == 2
        assert v2.snapshot_id == first.id
        assert v2.spec["adapters"] == [change.adapter.to_dict()]
        shown = ws.lineage(v2.ref)["adapters"]
        assert [a["kind"] for a in shown["adapters"]] == [change.adapter.kind]
        readers = {"plan": ["plan_onehot"], "age": ["buyer"]}[change.adapter.column]
        assert shown["adapters"][0]["read_by"] == readers

        inputs = old.drop(columns="bought")
        expected = ws.load(v1.ref).predict_proba(inputs)
        np.testing.assert_array_equal(
            ws.load(v2.ref).predict_proba(new.drop(columns="bought")), expected
        )

        # Monitoring: the new shape is read through the adapters; the rows are the training
        # rows, so nothing drifts and no column is missing.
        report = ws.monitor(v2.ref, new)
        assert report.drifted_columns == []
        assert report.quality is not None
        assert [f for f in report.quality.findings if f.kind in ("missing", "type", "unseen")] == []
        said = " ".join(note for note in report.notes if "adapters" in note)
        if change.name == "renamed":
            assert "'tier' read as 'plan'" in said
        if change.name == "new category":  # how many values the mapping changed, not hidden
            mapped = int((new["plan"] == "enterprise").sum())
            assert f"'plan': {mapped:,} of {ROWS:,} values changed" in said

        # Evaluation: both versions read the rows as the candidate does, so they tie exactly.
        window = ws.snapshot(new, name="shop-eval", check_schema=False)
        _, comparison = ws.evaluate(v2.ref, window, baseline=v1.ref)
        assert comparison.rows == ROWS
        assert comparison.candidate == comparison.baseline
        assert comparison.delta == 0

    # Serving: a client sends the new shape; the answer is v1's on the old rows.
    client = serve_client(home, models=[v2.ref])
    response = client.post("/v2/models/shop/infer", json=_request(new.head(20), change))
    assert response.status_code == 200, response.text
    proba = next(o for o in response.json()["outputs"] if o["name"] == "probabilities")
    np.testing.assert_allclose(np.reshape(proba["data"], (20, 2)), expected[:20], rtol=1e-12)
    meta = client.get("/v2/models/shop").json()
    assert [i["name"] for i in meta["inputs"]] == ["age", "income", "plan"]  # the model's names
    if change.name == "renamed":
        assert meta["parameters"]["input_aliases"] == {"tier": "plan"}
        body = _request(new.head(2), change)
        body["inputs"] = [t for t in body["inputs"] if t["name"] != "tier"]
        refused = client.post("/v2/models/shop/infer", json=body)
        assert refused.status_code == 400
        assert "'plan' is also accepted as 'tier'" in refused.json()["error"]


def test_a_cast_refuses_values_it_cannot_hold_naming_the_column(
    tmp_path: Path, shop_rows: Callable[..., pd.DataFrame], shop_graph: Callable[..., System]
) -> None:
    shop_system = shop_graph
    old = shop_rows(ROWS, 0)
    with Workspace.init(tmp_path / "ws") as ws:
        ws.train(shop_system(), ws.snapshot(old, name="shop"))
        bad = old.astype({"age": "float64"})
        bad.loc[3, "age"] = 41.5
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataQualityWarning)
            snap = ws.snapshot(bad, name="shop", allow_schema_change=True)
        system = shop_system(adapters=[Cast("age", "int")])
        before = len(ws.catalog.list_snapshots())
        with pytest.raises(
            DataError, match=r"column 'age': 1 value is not a whole number \(41.5\)"
        ):
            ws.train(system, snap)
        assert len(ws.catalog.list_snapshots()) == before  # nothing half-written


def test_adapting_a_version_refits_nothing_and_is_idempotent(
    tmp_path: Path, shop_rows: Callable[..., pd.DataFrame], shop_graph: Callable[..., System]
) -> None:
    old = shop_rows(ROWS, 0)
    with Workspace.init(tmp_path / "ws") as ws:
        v1 = ws.train(shop_graph(), ws.snapshot(old, name="shop")).version
        bridged = ws.adapt(v1.ref, [Rename("plan", source="tier")])
        assert bridged.created_version
        assert bridged.run.summary["trained"] == []
        assert bridged.version.parent_id == v1.id
        assert bridged.version.manifest == v1.manifest
        assert ws.system(bridged.version.ref).adapters == ws.system(v1.ref).adapters.__class__(
            [Rename("plan", source="tier")]
        )
        again = ws.adapt(bridged.version.ref, [Rename("plan", source="tier")])
        assert not again.created_version
        assert again.version.id == bridged.version.id
        renamed = old.drop(columns="bought").rename(columns={"plan": "tier"})
        np.testing.assert_array_equal(
            ws.load(bridged.version.ref).predict_proba(renamed),
            ws.load(v1.ref).predict_proba(old.drop(columns="bought")),
        )


def test_an_adapter_of_a_column_no_component_reads_is_refused(
    tmp_path: Path, shop_rows: Callable[..., pd.DataFrame], shop_graph: Callable[..., System]
) -> None:
    from regrow.data.adapters import Default
    from regrow.errors import SystemSpecError

    with Workspace.init(tmp_path / "ws") as ws:
        v1 = ws.train(shop_graph(), ws.snapshot(shop_rows(ROWS, 0), name="shop")).version
        with pytest.raises(SystemSpecError, match=r"default adapter of 'ages' adapts a column no "
                           r"component reads \(did you mean 'age'\?\)"):  # fmt: skip
            ws.adapt(v1.ref, [Default("ages", 0)])
        assert len(ws.catalog.list_system_versions("shop")) == 1  # nothing recorded


def test_new_rows_adapted_are_stored_apart_and_the_name_keeps_upstreams_shape(
    tmp_path: Path, shop_rows: Callable[..., pd.DataFrame], shop_graph: Callable[..., System]
) -> None:
    with Workspace.init(tmp_path / "ws") as ws:
        ws.train(shop_graph(), ws.snapshot(shop_rows(ROWS, 0), name="shop"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataQualityWarning)
            renamed = ws.snapshot(
                _renamed(shop_rows(ROWS, 1)), name="shop", allow_schema_change=True
            )
        run = ws.train(shop_graph(adapters=[Rename("plan", source="tier")]), renamed)
        trained_on = ws.catalog.get_snapshot(run.version.snapshot_id)
        assert trained_on.name == "shop-adapted"
        assert trained_on.parent_ids == (renamed.id,)
        # Upstream's next batch in the new shape is no schema change for the name.
        newest = ws.catalog.latest_schema("shop")
        assert newest is not None
        assert "tier" in [c["name"] for c in newest.spec["columns"]]
        ws.snapshot(_renamed(shop_rows(ROWS, 2)), name="shop")


def test_an_evaluation_on_rows_that_adapt_to_the_training_rows_is_not_held_out(
    tmp_path: Path, shop_rows: Callable[..., pd.DataFrame], shop_graph: Callable[..., System]
) -> None:
    old = shop_rows(ROWS, 0)
    with Workspace.init(tmp_path / "ws") as ws:
        first = ws.snapshot(old, name="shop")
        v1 = ws.train(shop_graph(), first).version
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataQualityWarning)
            renamed = ws.snapshot(_renamed(old), name="shop", allow_schema_change=True)
        v2 = ws.train(shop_graph(adapters=[Rename("plan", source="tier")]), renamed).version
        record, _ = ws.evaluate(v2.ref, renamed, baseline=v1.ref)
        # Recorded on the rows as v2 read them: the snapshot it trained on, not a held-out one.
        assert record.snapshot_id == first.id


def _own_mapping_system(handle_unknown: str = "ignore") -> System:
    """The shop with its one-hot encoder reading 'plan' through a mapping of its own."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import OneHotEncoder

    from regrow import Member, Transform

    mapping = MapCategories("plan", known=("free", "pro", "team"), unseen="team")
    return System(
        "shop",
        target="bought",
        components=[
            Transform(
                "plan_onehot",
                OneHotEncoder(handle_unknown=handle_unknown, sparse_output=False),
                inputs=["plan"],
                adapters=[mapping],
            ),
            Member("buyer", LogisticRegression(max_iter=200), ["age", "income", "plan_onehot"]),
        ],
    )


def test_a_components_own_adapter_refits_nothing_where_it_changes_nothing(
    tmp_path: Path,
    shop_rows: Callable[..., pd.DataFrame],
    shop_graph: Callable[..., System],
    serve_client: Callable[..., Any],
) -> None:
    old = shop_rows(ROWS, 0)
    home = tmp_path / "ws"
    with Workspace.init(home) as ws:
        first = ws.snapshot(old, name="shop")
        v1 = ws.train(shop_graph(), first).version
        # On the rows it trained on the mapping changes nothing: nothing is re-fitted.
        run = ws.train(_own_mapping_system(), first)
        assert run.run.summary["trained"] == []
        v2 = run.version
        assert v2.manifest == v1.manifest
        assert v2.spec["components"]["plan_onehot"]["adapters"] == [
            MapCategories("plan", known=("free", "pro", "team"), unseen="team").to_dict()
        ]
        assert [s.fresh for s in ws.status(v2.ref, system=_own_mapping_system())] == [True] * 2
        lineage = {c["name"]: c["adapters"] for c in ws.lineage(v2.ref)["components"]}
        assert lineage["buyer"] == []
        assert lineage["plan_onehot"][0]["kind"] == "category mapping"
        # Rows with a plan it never saw read as 'team', for this component alone.
        new = _new_category(old).drop(columns="bought")
        as_team = new.replace({"plan": {"enterprise": "team"}})
        np.testing.assert_array_equal(
            ws.load(v2.ref).predict_proba(new), ws.load(v1.ref).predict_proba(as_team)
        )
        # Trained on rows the mapping does change, the encoder is re-fitted on mapped rows.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DataQualityWarning)
            changed = ws.snapshot(_new_category(old), name="shop")
        refit = ws.train(_own_mapping_system(), changed)
        assert "plan_onehot" in refit.run.summary["trained"]
        parts = ws.catalog.get_component_versions([refit.version.manifest["plan_onehot"]])
        assert "plan (adapted)" in next(iter(parts.values())).parts["data"]
    client = serve_client(home, models=[v2.ref])
    body = _request(new.head(10).assign(bought=0), CHANGES[2])
    response = client.post("/v2/models/shop/infer", json=body)
    assert response.status_code == 200, response.text
    with Workspace.open(home) as ws:
        expected = ws.load(v1.ref).predict_proba(as_team.head(10))
    proba = next(o for o in response.json()["outputs"] if o["name"] == "probabilities")
    np.testing.assert_allclose(np.reshape(proba["data"], (10, 2)), expected, rtol=1e-12)


def test_a_component_may_only_adapt_values_of_its_own_columns() -> None:
    from sklearn.linear_model import LogisticRegression

    from regrow import Member
    from regrow.errors import SystemSpecError

    with pytest.raises(SystemSpecError, match="a rename adapter cannot be a component's own"):
        Member("m", LogisticRegression(), ["plan"], adapters=[Rename("plan", source="tier")])
    with pytest.raises(SystemSpecError, match="adapts a column it does not read"):
        Member("m", LogisticRegression(), ["age"], adapters=[Cast("income", "float")])


def test_a_new_snapshot_lists_each_change_with_its_class_under_the_policys_mode(
    tmp_path: Path, shop_rows: Callable[..., pd.DataFrame]
) -> None:
    from regrow.errors import IncompatibleSchema

    old = shop_rows(ROWS, 0)
    with Workspace.init(tmp_path / "ws") as ws:
        ws.snapshot(old, name="shop")
        with pytest.warns(DataQualityWarning) as seen:
            ws.snapshot(_renamed(old), name="shop", allow_schema_change=True)
        said = str(seen[0].message)
        assert "backward against schema v1: adaptable 'plan' renamed to 'tier' (rename)" in said
        with pytest.raises(IncompatibleSchema) as refused:
            ws.snapshot(_renamed(old).drop(columns="age"), name="shop")
        assert "backward against schema v2: breaking 'age' dropped (int) (default)" in str(
            refused.value
        )
