"""The evidence reads each immutable prediction file once: a later analysis parses only the
new files, and still reads the labels afresh (a late label changes the evidence)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from regrow import Workspace
from regrow.catalog.rollouts import Rollouts
from regrow.errors import ConfigError
from regrow.rollout import machine
from regrow.rollout.evidence import SHADOW, read_evidence
from regrow.rollout.logcache import FileCache

Log = Callable[..., None]


def test_a_step_parses_only_new_files_and_reads_late_labels(ws: Workspace, log: Log) -> None:
    r = machine.start(ws, "toy:v2", mode="shadow", min_requests=10)
    record = Rollouts(ws.catalog).get(r.id)
    cache = FileCache()
    at = datetime.now(UTC) + timedelta(seconds=1)
    first = [f"a{i}" for i in range(50)]
    log(at, "main", "toy:v1", first, set(first[:10]))
    log(at, SHADOW, "toy:v2", first, set(), labels=False)
    ev = read_evidence(ws.catalog, ws.store, record, cache=cache)
    assert ev.paired is not None
    assert (len(ev.paired), sum(ev.paired)) == (50, -10)
    assert cache.stats()["misses"] == 2
    # nothing new: every file comes from the cache, the evidence is the same
    assert read_evidence(ws.catalog, ws.store, record, cache=cache) == ev
    assert cache.stats()["misses"] == 2
    assert cache.stats()["hits"] == 2
    # a new file is read; requests served without labels count once labelled (late labels)
    late = [f"b{i}" for i in range(30)]
    log(at, "main", "toy:v1", late, set(late), labels=False)
    log(at, SHADOW, "toy:v2", late, set(), labels=False)
    ev2 = read_evidence(ws.catalog, ws.store, record, cache=cache)
    assert ev2.paired is not None
    assert len(ev2.paired) == 50
    assert cache.stats()["misses"] == 4
    ws.feedback("toy", [(i, 0, 1) for i in late])
    ev3 = read_evidence(ws.catalog, ws.store, record, cache=cache)
    assert ev3.paired is not None
    assert (len(ev3.paired), sum(ev3.paired)) == (80, -40)
    assert cache.stats()["misses"] == 4  # the labels came, no file was parsed again


def test_the_cache_is_bounded_by_rows(ws: Workspace, log: Log) -> None:
    r = machine.start(ws, "toy:v2", min_requests=10)
    record = Rollouts(ws.catalog).get(r.id)
    cache = FileCache(max_rows=60)
    at = datetime.now(UTC) + timedelta(seconds=1)
    for k in range(3):
        log(at, "main", "toy:v1", [f"{k}-{i}" for i in range(40)], set())
    ev = read_evidence(ws.catalog, ws.store, record, cache=cache)
    assert len(ev.stable) == 120
    assert cache.stats()["rows"] <= 60
    assert read_evidence(ws.catalog, ws.store, record, cache=cache) == ev  # still right
    with pytest.raises(ConfigError, match="max_rows"):
        FileCache(max_rows=-1)
