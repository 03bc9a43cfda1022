"""Component versions: deterministic ids, reuse, batch lookups."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from regrow._hashing import hash_json, sha256_hex
from regrow.catalog import Catalog, ComponentVersionRecord
from regrow.catalog.catalog import component_version_id
from regrow.errors import ConfigError, NotFound, VersionNotFound


def add(
    catalog: Catalog, component: str = "scaler", tag: str = "a", **kw: Any
) -> ComponentVersionRecord:
    values: dict[str, Any] = {
        "system": "churn",
        "component": component,
        "kind": "transform",
        "fingerprint": hash_json([component, tag]),
        "parts": {"recipe": {"with_mean": True}, "seed": 3},
        "artifact": "d" * 64,
        "run_id": None,
        "snapshot_id": None,
        "seed": 3,
        "train_seconds": 1.25,
        "info": {"n_features": 4},
    }
    values.update(kw)
    return catalog.add_component_version(**values)


def test_component_version_id_is_deterministic() -> None:
    expected = sha256_hex(b"churn/scaler/" + b"f" * 64)[:32]
    assert component_version_id("churn", "scaler", "f" * 64) == expected


def test_add_component_version_stores_every_field(catalog: Catalog) -> None:
    record = add(catalog)
    assert record.id == component_version_id("churn", "scaler", record.fingerprint)
    assert catalog.get_component_version(record.id) == record
    assert record.parts == {"recipe": {"with_mean": True}, "seed": 3}
    assert record.info == {"n_features": 4}
    assert (record.seed, record.train_seconds, record.artifact) == (3, 1.25, "d" * 64)
    assert catalog.list_systems() == ["churn"]


def test_the_same_fingerprint_returns_the_existing_version(catalog: Catalog) -> None:
    first = add(catalog)
    again = add(catalog, artifact="e" * 64, train_seconds=9.0)
    assert again == first
    assert catalog.component_history("churn", "scaler") == [first]


def test_concurrent_adds_of_one_fingerprint_make_one_row(
    catalog: Catalog, raw: Engine, rows: Any
) -> None:
    barrier = threading.Barrier(6)
    results: list[ComponentVersionRecord] = []
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results.append(add(catalog, artifact=f"{i:064d}"))
        except BaseException as exc:  # collected and re-checked below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len({(r.id, r.artifact, r.created_at) for r in results}) == 1
    assert rows(raw, "component_versions") == 1
    assert rows(raw, "components") == 1


def test_component_history_is_newest_first(catalog: Catalog) -> None:
    a, b, c = (add(catalog, tag=t) for t in "abc")
    add(catalog, component="model", kind="member")
    assert catalog.component_history("churn", "scaler") == [c, b, a]
    assert catalog.component_history("churn", "nothing") == []


def test_find_component_versions_returns_those_that_exist(catalog: Catalog) -> None:
    scaler = add(catalog)
    model = add(catalog, component="model", kind="member")
    found = catalog.find_component_versions(
        "churn",
        {
            "scaler": scaler.fingerprint,
            "model": hash_json("retrained"),
            "other": model.fingerprint,  # another component's fingerprint is not a match
        },
    )
    assert found == {"scaler": scaler}
    assert catalog.find_component_versions("other-system", {"scaler": scaler.fingerprint}) == {}


def test_find_component_versions_is_one_query_for_1000_components(
    catalog: Catalog, capture_sql: Any
) -> None:
    add(catalog, component="c0")
    wanted = {f"c{i}": hash_json([f"c{i}", "a"]) for i in range(1000)}
    with capture_sql() as seen:
        found = catalog.find_component_versions("churn", wanted)
    assert list(found) == ["c0"]
    assert len([s for s in seen if "component_versions" in s]) == 1


def test_get_component_versions_in_one_query(catalog: Catalog, capture_sql: Any) -> None:
    records = [add(catalog, tag=t) for t in "abcd"]
    with capture_sql() as seen:
        got = catalog.get_component_versions([r.id for r in records])
    assert got == {r.id: r for r in records}
    assert len([s for s in seen if "component_versions" in s]) == 1


def test_unknown_component_versions_are_named(catalog: Catalog) -> None:
    known = add(catalog)
    with pytest.raises(VersionNotFound, match="unknown version 'feedbeef'"):
        catalog.get_component_versions([known.id, "feedbeef"])
    with pytest.raises(VersionNotFound, match="unknown version 'nope'"):
        catalog.get_component_version("nope")


def test_component_versions_check_their_references_and_values(catalog: Catalog) -> None:
    with pytest.raises(NotFound, match="unknown run 'r1'"):
        add(catalog, run_id="r1")
    with pytest.raises(NotFound, match="unknown snapshot 's1'"):
        add(catalog, snapshot_id="s1")
    with pytest.raises(ConfigError, match="'train_seconds' must be >= 0"):
        add(catalog, train_seconds=-1)
    with pytest.raises(ConfigError, match="'fingerprint' must be a non-empty string"):
        add(catalog, fingerprint="x" * 65)
    with pytest.raises(ConfigError, match="invalid system name 'a b'"):
        add(catalog, system="a b")
    assert catalog.list_systems() == []
