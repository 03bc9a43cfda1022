"""System versions: numbering, manifests, reference forms, lineage."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from regrow.catalog import Catalog
from regrow.errors import CatalogError, ConfigError, VersionNotFound


def test_versions_are_numbered_per_system(catalog: Catalog, build: Any) -> None:
    v1 = build.version("churn")
    v2 = build.version("churn", parent=v1, note="retrained the model")
    other = build.version("fraud")
    assert (v1.number, v2.number, other.number) == (1, 2, 1)
    assert (v1.ref, v2.ref) == ("churn:v1", "churn:v2")
    assert v2.parent_id == v1.id
    assert v2.note == "retrained the model"
    assert catalog.get_system_version(v2.id) == v2
    assert catalog.list_systems() == ["churn", "fraud"]
    assert catalog.list_system_versions("churn") == [v2, v1]
    assert catalog.list_system_versions() == [other, v2, v1]


def test_add_system_version_is_audited(catalog: Catalog, build: Any) -> None:
    v1 = build.version("churn", actor="ana")
    [event] = catalog.audit_events(subject="version:churn:v1")
    assert (event.action, event.actor) == ("version.create", "ana")
    assert event.payload["id"] == v1.id


@pytest.mark.parametrize(
    ("ref", "expected"),
    [("churn:v1", 1), ("churn:1", 1), ("churn:v2", 2), ("churn", 3), ("churn@champion", 2)],
)
def test_reference_forms(catalog: Catalog, build: Any, ref: str, expected: int) -> None:
    versions = [build.version("churn") for _ in range(3)]
    catalog.move_alias("churn", "champion", versions[1].id)
    assert catalog.get_system_version(ref).number == expected


def test_ids_and_unique_prefixes_resolve(catalog: Catalog, build: Any) -> None:
    version = build.version("churn")
    assert catalog.get_system_version(version.id) == version
    assert catalog.get_system_version(version.id[:8]) == version


def test_ambiguous_prefix_lists_candidates(
    catalog: Catalog, build: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = iter(["abcdef" + "0" * 26, "abcdef" + "1" * 26])
    fake_uuid = SimpleNamespace(uuid4=lambda: SimpleNamespace(hex=next(ids)))
    monkeypatch.setattr("regrow.catalog.versions.uuid", fake_uuid)
    build.version("churn")
    build.version("fraud")
    with pytest.raises(VersionNotFound, match="ambiguous") as info:
        catalog.get_system_version("abcdef")
    assert "churn:v1 (abcdef000000)" in str(info.value)
    assert "fraud:v1 (abcdef111111)" in str(info.value)
    assert catalog.get_system_version("abcdef1").system == "fraud"


def test_unknown_number_lists_the_newest_versions(catalog: Catalog, build: Any) -> None:
    for _ in range(2):
        build.version("churn")
    with pytest.raises(VersionNotFound) as info:
        catalog.get_system_version("churn:v9")
    assert str(info.value) == (
        "unknown version 'churn:v9'; the newest versions of 'churn' are churn:v2, churn:v1"
    )
    assert isinstance(info.value, LookupError)


def test_unknown_system_suggests_close_names(catalog: Catalog, build: Any) -> None:
    build.version("churn")
    with pytest.raises(VersionNotFound, match=r"did you mean 'churn'\?"):
        catalog.get_system_version("chrun:v1")
    with pytest.raises(VersionNotFound, match=r"known systems: 'churn'"):
        catalog.get_system_version("weather")


def test_a_system_whose_first_training_failed_says_so(catalog: Catalog, build: Any) -> None:
    build.components("churn")  # components fitted, the version never made
    with pytest.raises(VersionNotFound, match="'churn' has no version yet") as info:
        catalog.get_system_version("churn:v1")
    assert "did you mean" not in str(info.value)
    assert "regrow train FILE.py:churn" in str(info.value.hint)


def test_unknown_alias_lists_the_aliases(catalog: Catalog, build: Any) -> None:
    version = build.version("churn")
    with pytest.raises(VersionNotFound, match="has no aliases yet"):
        catalog.get_system_version("churn@champion")
    catalog.move_alias("churn", "champion", version.id)
    with pytest.raises(VersionNotFound, match="the aliases of 'churn' are 'champion'"):
        catalog.get_system_version("churn@champoin")


def test_malformed_and_empty_references(catalog: Catalog) -> None:
    with pytest.raises(VersionNotFound, match="holds no system versions yet"):
        catalog.get_system_version("churn")
    for bad in ("churn:vx", "a b", "", "churn@"):
        with pytest.raises(VersionNotFound, match="unknown version") as info:
            catalog.get_system_version(bad)
        assert "<system>" in str(info.value) or "churn" in str(info.value)


def test_unknown_manifest_entry_writes_nothing(
    catalog: Catalog, build: Any, raw: Engine, rows: Any
) -> None:
    v1 = build.version("churn")
    before = {t: rows(raw, t) for t in ("system_versions", "audit_events")}
    events = catalog.audit_events()
    manifest = {**v1.manifest, "model": "0" * 32}
    with pytest.raises(VersionNotFound, match=f"unknown version '{'0' * 32}'.*'model'"):
        catalog.add_system_version(
            system="churn",
            manifest=manifest,
            spec={},
            parent_id=v1.id,
            run_id=None,
            snapshot_id=None,
        )
    assert {t: rows(raw, t) for t in before} == before
    assert catalog.audit_events() == events
    assert catalog.get_system_version("churn") == v1


def test_manifest_entries_must_belong_to_the_system(catalog: Catalog, build: Any) -> None:
    churn = build.version("churn")
    fraud = build.components("fraud")
    with pytest.raises(CatalogError, match="of system 'fraud'"):
        build.version("churn", manifest={**churn.manifest, "model": fraud["model"]})
    with pytest.raises(CatalogError, match="component 'scaler'"):
        build.version("churn", manifest={"model": churn.manifest["scaler"]})
    with pytest.raises(ConfigError, match="at least one"):
        build.version("churn", manifest={})
    assert catalog.list_system_versions() == [churn]


def test_parent_and_references_are_checked(catalog: Catalog, build: Any) -> None:
    fraud = build.version("fraud")
    with pytest.raises(CatalogError, match="parent fraud:v1 is a version of 'fraud'"):
        build.version("churn", parent=fraud)
    with pytest.raises(VersionNotFound, match="unknown version 'nope'"):
        build.version("churn", parent_id="nope")
    with pytest.raises(Exception, match="unknown run 'r'"):
        build.version("churn", run_id="r")
    with pytest.raises(Exception, match="unknown snapshot 's'"):
        build.version("churn", snapshot_id="s")
    assert catalog.list_system_versions("churn") == []


def test_concurrent_versions_get_distinct_numbers(catalog: Catalog, build: Any) -> None:
    manifest = build.components("churn")
    barrier = threading.Barrier(5)
    numbers: list[int] = []
    errors: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            version = catalog.add_system_version(
                system="churn",
                manifest=manifest,
                spec={},
                parent_id=None,
                run_id=None,
                snapshot_id=None,
            )
            numbers.append(version.number)
        except BaseException as exc:  # collected and checked below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(numbers) == [1, 2, 3, 4, 5]
    created = len(catalog.audit_events(limit=1000))  # the components' events, then the versions'
    assert catalog.verify_audit() == created
    assert created >= 5


def test_lineage_follows_parents_newest_first(catalog: Catalog, build: Any) -> None:
    chain = [build.version("churn")]
    for _ in range(4):
        chain.append(build.version("churn", parent=chain[-1]))
    build.version("churn")  # unrelated
    newest = chain[-1]
    assert catalog.lineage(newest.id) == chain[::-1]
    assert catalog.lineage(newest.id, depth=2) == chain[::-1][:3]
    assert catalog.lineage(newest.id, depth=0) == [newest]
    assert catalog.lineage(chain[0].id) == [chain[0]]


def test_lineage_of_an_unknown_version(catalog: Catalog) -> None:
    with pytest.raises(VersionNotFound, match="unknown version 'nope'"):
        catalog.lineage("nope")
    with pytest.raises(ConfigError, match="'depth' must be >= 0"):
        catalog.lineage("nope", depth=-1)
