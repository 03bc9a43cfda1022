"""Schemas, snapshots and profiles."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import pytest

from regrow._hashing import hash_json
from regrow.catalog import Catalog
from regrow.errors import CatalogError, ConfigError, NotFound


def test_register_schema_ids_the_spec_and_counts_versions(catalog: Catalog) -> None:
    v1 = catalog.register_schema("sales", {"columns": {"x": "float"}})
    v2 = catalog.register_schema("sales", {"columns": {"x": "float", "y": "int"}})
    assert (v1.version, v2.version) == (1, 2)
    assert v1.id == hash_json({"columns": {"x": "float"}})
    assert v1.created_at.tzinfo is UTC
    assert catalog.schema_versions("sales") == [v1, v2]
    assert catalog.get_schema(v2.id) == v2


def test_register_schema_is_idempotent_even_for_an_older_spec(catalog: Catalog) -> None:
    v1 = catalog.register_schema("sales", {"columns": {"x": "float"}})
    catalog.register_schema("sales", {"columns": {"x": "int"}})
    assert catalog.register_schema("sales", {"columns": {"x": "float"}}) == v1
    assert len(catalog.schema_versions("sales")) == 2
    assert [e.action for e in catalog.audit_events()] == ["schema.create"] * 2


def test_the_same_spec_can_serve_two_datasets(catalog: Catalog) -> None:
    spec = {"columns": {"x": "float"}}
    a = catalog.register_schema("train", spec)
    b = catalog.register_schema("holdout", spec)
    assert a.id == b.id
    assert (a.name, b.name) == ("train", "holdout")
    assert catalog.schema_versions("holdout") == [b]
    assert catalog.get_schema(a.id) == a


def test_unknown_schema_names_the_id(catalog: Catalog) -> None:
    with pytest.raises(NotFound, match="unknown schema 'nope'") as info:
        catalog.get_schema("nope")
    assert isinstance(info.value, LookupError)
    assert catalog.schema_versions("nothing") == []


def test_add_snapshot_records_everything_and_the_profile(catalog: Catalog, build: Any) -> None:
    snap = build.snapshot("sales", time_column="x")
    got = catalog.get_snapshot(snap.id)
    assert got == snap
    assert got.columns == ("x", "y")
    assert got.slices == {"big": "x > 10"}
    assert got.time_column == "x"
    assert got.parent_ids == ()
    assert catalog.get_profile(snap.id) == {"x": {"mean": 1.5}, "n": 1}
    [event] = catalog.audit_events(subject=f"snapshot:{snap.id}")
    assert event.action == "snapshot.create"
    assert event.payload["name"] == "sales"


def test_add_snapshot_is_idempotent_on_id(catalog: Catalog, build: Any) -> None:
    snap = build.snapshot("sales")
    again = build.snapshot("sales", id=snap.id, rows=5, profile={"other": 1})
    assert again == snap
    assert catalog.get_profile(snap.id) == {"x": {"mean": 1.5}, "n": 1}
    assert len(catalog.audit_events(subject=f"snapshot:{snap.id}")) == 1


def test_add_snapshot_checks_its_references(catalog: Catalog, build: Any) -> None:
    with pytest.raises(NotFound, match="unknown schema 'f00'"):
        build.snapshot("sales", schema_id="f00")
    with pytest.raises(NotFound, match="unknown snapshot 'missing-parent'"):
        build.snapshot("sales", parent_ids=["missing-parent"])
    with pytest.raises(ConfigError, match="time_column 'when'"):
        build.snapshot("sales", time_column="when")
    with pytest.raises(ConfigError, match="'rows' must be a 64-bit integer"):
        build.snapshot("sales", rows="many")
    assert catalog.list_snapshots() == []


def test_snapshot_parents_are_kept(catalog: Catalog, build: Any) -> None:
    first = build.snapshot("sales")
    second = build.snapshot("sales", parent_ids=[first.id])
    assert catalog.get_snapshot(second.id).parent_ids == (first.id,)


def test_get_snapshot_by_prefix_and_by_name(catalog: Catalog, build: Any) -> None:
    old = build.snapshot("sales")
    new = build.snapshot("sales")
    other = build.snapshot("weather")
    assert catalog.get_snapshot(old.id[:10]) == old
    assert catalog.get_snapshot("sales") == new
    assert catalog.get_snapshot("weather") == other
    assert catalog.list_snapshots() == [other, new, old]
    assert catalog.list_snapshots("sales") == [new, old]


def test_unknown_snapshot_hints_at_close_names(catalog: Catalog, build: Any) -> None:
    build.snapshot("sales")
    with pytest.raises(NotFound, match=r"unknown snapshot 'sals'; did you mean 'sales'\?"):
        catalog.get_snapshot("sals")
    with pytest.raises(NotFound, match="unknown snapshot 'zzzzzz'; pass a snapshot id"):
        catalog.get_snapshot("zzzzzz")
    # a file where a stored snapshot is read (`regrow evaluate --snapshot new.csv`)
    with pytest.raises(
        NotFound, match=r"not a file: .*snapshot create data/sales\.csv --name sales"
    ):
        catalog.get_snapshot("data/sales.csv")


def test_unknown_snapshot_in_an_empty_catalog(catalog: Catalog) -> None:
    with pytest.raises(NotFound, match="holds no snapshots yet"):
        catalog.get_snapshot("abcdef")


def test_ambiguous_snapshot_prefix_lists_candidates(catalog: Catalog, build: Any) -> None:
    a = build.snapshot("sales", id="abcdef" + "0" * 58)
    b = build.snapshot("sales", id="abcdef" + "1" * 58)
    with pytest.raises(NotFound, match="ambiguous") as info:
        catalog.get_snapshot("abcdef")
    assert a.id[:12] in str(info.value)
    assert b.id[:12] in str(info.value)
    assert catalog.get_snapshot("abcdef1") == b


def test_short_prefixes_are_not_ids(catalog: Catalog, build: Any) -> None:
    snap = build.snapshot("sales")
    with pytest.raises(NotFound):
        catalog.get_snapshot(snap.id[:5])


def test_slice_profiles_are_stored_once(catalog: Catalog, build: Any) -> None:
    snap = build.snapshot("sales")
    catalog.put_profile(snap.id, "big", {"x": {"mean": 20.0}})
    catalog.put_profile(snap.id, "big", {"x": {"mean": 20.0}})  # the same again: no-op
    assert catalog.get_profile(snap.id, "big") == {"x": {"mean": 20.0}}
    with pytest.raises(CatalogError, match="already has a different profile for slice 'big'"):
        catalog.put_profile(snap.id, "big", {"x": {"mean": 21.0}})
    assert catalog.get_profile(snap.id, "big") == {"x": {"mean": 20.0}}


def test_missing_profiles_name_what_exists(catalog: Catalog, build: Any) -> None:
    snap = build.snapshot("sales")
    with pytest.raises(NotFound, match=r"unknown profile slice 'eu'; .* has profiles for ''"):
        catalog.get_profile(snap.id, "eu")
    with pytest.raises(NotFound, match="unknown snapshot 'nope'"):
        catalog.get_profile("nope")
    with pytest.raises(NotFound, match="unknown snapshot 'nope'"):
        catalog.put_profile("nope", "eu", {})


def test_json_values_are_normalized(catalog: Catalog, build: Any) -> None:
    snap = build.snapshot(
        "sales", profile={"bins": (1, 2), "tags": {"b", "a"}, "nan": float("nan")}
    )
    assert catalog.get_profile(snap.id) == {"bins": [1, 2], "tags": ["a", "b"], "nan": "nan"}


# -- what snapshot safety reads: the name's latest schema, its target, a schema change -------


def test_latest_schema_is_that_of_the_newest_snapshot_of_the_name(
    catalog: Catalog, build: Any
) -> None:
    assert catalog.latest_schema("sales") is None
    v1 = catalog.register_schema("sales", {"columns": {"x": "float"}})
    assert catalog.latest_schema("sales") == v1  # no snapshot yet: the highest version
    v2 = catalog.register_schema("sales", {"columns": {"x": "int"}})
    snap = build.snapshot("sales", schema_id=v1.id)  # the newest snapshot uses v1 again
    assert catalog.latest_schema("sales") == v1
    assert catalog.snapshot_schema(snap.id) == v1
    assert catalog.latest_schema("other") is None
    assert v2.version == 2


def test_trained_target_comes_from_the_newest_version_trained_on_the_name(
    catalog: Catalog, build: Any
) -> None:
    snap = build.snapshot("sales")
    assert catalog.trained_target("sales") is None
    build.version(snapshot_id=snap.id, spec={"components": [], "target": "churned"})
    build.version(snapshot_id=snap.id, spec={"components": [], "target": "label"})
    assert catalog.trained_target("sales") == "label"
    assert catalog.trained_target("other") is None


def test_an_allowed_schema_change_is_audited_with_the_version(catalog: Catalog) -> None:
    catalog.register_schema("sales", {"columns": {"x": "float"}})
    change = {"problems": ["column 'y' (int) is missing"], "from_version": 1}
    v2 = catalog.register_schema("sales", {"columns": {"z": "float"}}, change=change)
    events = catalog.audit_events(subject="schema:sales")
    assert [e.action for e in events] == ["schema.change", "schema.create", "schema.create"]
    payload = {k: v for k, v in events[0].payload.items() if k != "covers"}
    assert payload == {**change, "id": v2.id, "version": 2}
    # Back to an older spec: no new version, but the allowed change is still recorded.
    catalog.register_schema("sales", {"columns": {"x": "float"}}, change=change)
    assert catalog.audit_events(subject="schema:sales")[0].payload["version"] == 1
    assert catalog.verify_audit() == 4


def test_describe_snapshot_joins_record_schema_version_and_profile(
    catalog: Catalog, build: Any
) -> None:
    catalog.register_schema("sales", {"columns": [{"name": "x", "dtype": "float"}]})
    schema = catalog.register_schema(
        "sales",
        {
            "columns": [
                {"name": "x", "dtype": "float", "nullable": True},
                {"name": "c", "dtype": "category", "nullable": False},
            ]
        },
    )
    profile = {
        "rows": 4,
        "columns": {
            "x": {"dtype": "float", "nulls": 1, "null_rate": 0.25, "min": 1.0, "max": 3.0},
            "c": {"dtype": "category", "nulls": 0, "null_rate": 0.0, "distinct": 2,
                  "top": [{"value": "a", "count": 3}, {"value": "b", "count": 1}]},
        },
        "slice_rows": {"big": 1},
        "notes": [{"column": "x", "kind": "nulls", "count": 1, "message": "column 'x': 1 null"}],
        "source": "/data/sales.csv",
    }  # fmt: skip
    snap = build.snapshot("sales", schema_id=schema.id, columns=("x", "c"), profile=profile)
    info = catalog.describe_snapshot("sales")
    assert info["id"] == snap.id
    assert info["schema"] == {"id": schema.id, "version": 2}
    assert info["source"] == "/data/sales.csv"
    assert info["slices"] == [{"name": "big", "expr": "x > 10", "rows": 1}]
    assert info["notes"] == ["column 'x': 1 null"]
    x, c = info["columns"]
    assert (x["name"], x["nullable"], x["nulls"], x["min"], x["max"]) == ("x", True, 1, 1.0, 3.0)
    assert (c["nullable"], c["distinct"], c["top"][0]) == (False, 2, {"value": "a", "count": 3})


def test_describe_snapshot_of_an_older_snapshot_says_what_was_not_kept(
    catalog: Catalog, build: Any
) -> None:
    build.snapshot("sales")  # a profile without slice rows, notes or source
    info = catalog.describe_snapshot("sales")
    assert info["source"] is None
    assert info["notes"] is None
    assert info["slices"] == [{"name": "big", "expr": "x > 10", "rows": None}]
    with pytest.raises(NotFound, match="unknown snapshot 'nope'"):
        catalog.describe_snapshot("nope")
