"""The prediction log (:mod:`regrow.serve.predlog`): batches queued on the request path,
written off it to one Parquet file per system and hour, indexed in the catalog; bounded
memory, failed writes retried, close flushes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from regrow.catalog import Catalog
from regrow.catalog.predictions import Predictions
from regrow.catalog.store import LocalStore
from regrow.errors import StoreError
from regrow.serve.predlog import META_COLUMNS, PredictionLog

T0 = datetime(2026, 3, 1, 10, 58, tzinfo=UTC)


class FlakyStore(LocalStore):
    """A real local store whose writes fail while ``failing`` is set (a store that is down)."""

    failing = False

    def put(self, data: bytes) -> str:
        if self.failing:
            raise StoreError("the store is unreachable", hint="try again")
        return super().put(data)


class FlakyPredictions(Predictions):
    """The real index, whose writes fail while its catalog's ``failing`` is set."""

    def add_file(self, **values: Any) -> Any:
        if getattr(self._catalog, "failing", False):
            raise OSError("the catalog database is unreachable")
        return super().add_file(**values)


class FlakyCatalog(Catalog):
    """A real catalog whose prediction index cannot be written while ``failing`` is set."""

    failing = False

    @property
    def predictions(self) -> Predictions:
        return FlakyPredictions(self)


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[Catalog]:
    with Catalog(f"sqlite:///{tmp_path}/catalog.db") as opened:
        yield opened


@pytest.fixture
def store(tmp_path: Path) -> FlakyStore:
    return FlakyStore(tmp_path / "artifacts")


@pytest.fixture
def log(catalog: Catalog, store: FlakyStore) -> Iterator[PredictionLog]:
    opened = PredictionLog(catalog, store, flush_seconds=3600, max_pending_rows=100)
    yield opened
    opened.close()


def record(log: PredictionLog, n: int, *, rid: str = "r", at: datetime = T0, **kw: Any) -> bool:
    values = {
        "system": "churn",
        "version": "churn:v1",
        "lane": "main",
        "request_ids": [rid] * n,
        "rows": list(range(n)),
        "inputs": pd.DataFrame({"age": np.arange(n) + 30, "plan": list("ab" * n)[:n]}),
        "outputs": {"predict": np.arange(n) % 2, "probabilities": np.full((n, 2), 0.5)},
        "at": at,
        "classes": ["no", "yes"],
    }  # fmt: skip
    values.update(kw)
    return log.record(**values)


def read(store: FlakyStore, key: str) -> pa.Table:
    return pq.read_table(pa.BufferReader(store.get(key)))


def test_batches_are_written_to_one_indexed_file_with_inputs_and_outputs_apart(
    log: PredictionLog, catalog: Catalog, store: FlakyStore
) -> None:
    assert record(log, 2, rid="r1")
    assert record(log, 1, rid="r2", at=T0 + timedelta(seconds=30), version="churn:v2")
    assert log.stats()["pending_rows"] == 3
    assert catalog.predictions.files("churn") == []  # nothing is written on the request path
    assert log.flush() == 3
    (f,) = catalog.predictions.files("churn")
    assert (f.rows, f.hour, f.first_at, f.last_at) == (
        3, T0.replace(minute=0), T0, T0 + timedelta(seconds=30)
    )  # fmt: skip
    assert f.versions == {"churn:v1": 2, "churn:v2": 1}
    table = read(store, f.artifact)
    assert tuple(table.column_names) == (*META_COLUMNS, "input", "output")
    assert table.schema.field("served_at").type == pa.timestamp("us", tz="UTC")
    rows = table.flatten().to_pylist()
    assert [(r["request_id"], r["row"], r["system_version"], r["lane"]) for r in rows] == [
        ("r1", 0, "churn:v1", "main"), ("r1", 1, "churn:v1", "main"), ("r2", 0, "churn:v2", "main")
    ]  # fmt: skip
    assert rows[1]["input.age"] == 31
    assert rows[1]["input.plan"] == "b"
    assert table.schema.field("output").type.names == ["prediction", "proba__no", "proba__yes"]
    assert rows[1]["output.prediction"] == 1
    assert rows[1]["output.proba__yes"] == 0.5
    assert log.stats() | {"last_error": None} == {
        "rows_logged": 3, "rows_dropped": 0, "rows_unwritable": 0, "files_written": 1,
        "pending_rows": 0, "write_errors": 0, "last_error": None,
    }  # fmt: skip


def test_input_names_cannot_clash_with_the_logs_own_columns(
    log: PredictionLog, catalog: Catalog, store: FlakyStore
) -> None:
    inputs = pd.DataFrame({"request_id": ["x"], "prediction": [7.0], "row": [9]})
    assert record(log, 1, inputs=inputs, outputs={"predict": ["yes"]}, classes=None)
    log.flush()
    row = read(store, catalog.predictions.files("churn")[0].artifact).flatten().to_pylist()[0]
    assert (row["request_id"], row["row"]) == ("r", 0)
    assert (row["input.request_id"], row["input.prediction"], row["input.row"]) == ("x", 7.0, 9)
    assert row["output.prediction"] == "yes"


def test_rows_are_grouped_by_system_and_hour(log: PredictionLog, catalog: Catalog) -> None:
    record(log, 2)  # 10:58
    record(log, 3, at=T0 + timedelta(minutes=3))  # 11:01
    record(log, 1, at=T0 + timedelta(minutes=1))  # 10:59
    record(log, 4, system="other")
    assert log.flush() == 10
    files = catalog.predictions.files("churn")
    assert [(f.hour.hour, f.rows) for f in files] == [(10, 3), (11, 3)]
    assert [f.rows for f in catalog.predictions.files("other")] == [4]
    assert log.stats()["files_written"] == 3


def test_rows_past_the_bound_are_dropped_and_counted_never_blocking(
    log: PredictionLog, caplog: pytest.LogCaptureFixture
) -> None:
    assert record(log, 60)
    assert not record(log, 50)  # 110 > max_pending_rows=100: dropped
    assert "prediction log: 50 rows dropped so far" in caplog.text  # said, not only counted
    assert record(log, 40)
    started = time.perf_counter()
    assert not record(log, 1)
    assert time.perf_counter() - started < 0.1
    stats = log.stats()
    assert (stats["pending_rows"], stats["rows_dropped"]) == (100, 51)
    assert log.flush() == 100
    assert log.stats()["rows_logged"] == 100


def test_a_failed_write_is_kept_retried_and_counted_against_the_bound(
    log: PredictionLog, catalog: Catalog, store: FlakyStore
) -> None:
    record(log, 70)
    store.failing = True
    with pytest.raises(StoreError, match="70 logged rows could not be written yet"):
        log.flush()
    stats = log.stats()
    assert (stats["pending_rows"], stats["write_errors"]) == (70, 1)
    assert "unreachable" in stats["last_error"]
    assert not record(log, 40)  # the failed file's rows still count
    assert record(log, 30)
    store.failing = False
    assert log.flush() == 100
    assert sum(f.rows for f in catalog.predictions.files("churn")) == 100
    assert log.stats()["pending_rows"] == 0


def test_a_file_stored_but_not_indexed_is_indexed_once_at_the_next_flush(
    tmp_path: Path, store: FlakyStore
) -> None:
    with FlakyCatalog(f"sqlite:///{tmp_path}/flaky.db") as catalog:
        log = PredictionLog(catalog, store, flush_seconds=3600)
        record(log, 5)
        catalog.failing = True
        with pytest.raises(StoreError, match="OSError: the catalog database is unreachable"):
            log.flush()
        assert log.stats()["pending_rows"] == 5
        catalog.failing = False
        record(log, 1, rid="r2", at=T0 + timedelta(minutes=30))  # another hour
        assert log.flush() == 6
        files = catalog.predictions.files("churn")
        assert [f.rows for f in files] == [5, 1]
        assert sum(1 for f in store.list_files() if f.key in {x.artifact for x in files}) == 2
        log.close()


def test_a_batch_that_cannot_be_stored_is_counted_and_the_others_are_written(
    log: PredictionLog, catalog: Catalog
) -> None:
    record(log, 2)
    record(log, 3, rid="bad", rows=[0])  # three rows, one row number: cannot be a table
    record(log, 1, rid="r3")
    assert log.flush() == 3
    stats = log.stats()
    assert (stats["rows_unwritable"], stats["rows_logged"], stats["pending_rows"]) == (3, 3, 0)
    assert "disagree" in stats["last_error"]
    assert [f.rows for f in catalog.predictions.files("churn")] == [3]


def test_close_flushes_and_later_batches_are_dropped(catalog: Catalog, store: FlakyStore) -> None:
    log = PredictionLog(catalog, store, flush_seconds=3600)
    record(log, 4)
    log.close()
    assert [f.rows for f in catalog.predictions.files("churn")] == [4]
    assert not record(log, 1)
    assert log.stats()["rows_dropped"] == 1
    log.close()  # again: nothing happens


def _wait(predicate: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "the writer thread did not flush in time"
        time.sleep(0.01)


def test_the_writer_flushes_when_enough_rows_wait(catalog: Catalog, store: FlakyStore) -> None:
    with PredictionLog(catalog, store, flush_rows=5, flush_seconds=3600) as log:
        record(log, 3)
        time.sleep(0.05)
        assert log.stats()["files_written"] == 0
        record(log, 2)
        _wait(lambda: log.stats()["files_written"] == 1)


def test_the_writer_flushes_every_flush_seconds(catalog: Catalog, store: FlakyStore) -> None:
    with PredictionLog(catalog, store, flush_seconds=0.05) as log:
        record(log, 1)
        _wait(lambda: log.stats()["rows_logged"] == 1)
        record(log, 1, rid="r2")
        _wait(lambda: log.stats()["rows_logged"] == 2)


def test_concurrent_recorders_lose_no_row(catalog: Catalog, store: FlakyStore) -> None:
    with PredictionLog(catalog, store, flush_rows=50, flush_seconds=0.02) as log:

        def serve(worker: int) -> None:
            for i in range(100):
                record(log, 2, rid=f"w{worker}-{i}")

        threads = [threading.Thread(target=serve, args=(w,)) for w in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert log.stats()["rows_logged"] == 800
    assert sum(f.rows for f in catalog.predictions.files("churn")) == 800
