"""Hot swap: an alias moves, the server follows without dropping a request; bad swaps refused."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from regrow import Workspace
from regrow.serve.host import ModelHost, Target
from regrow.serve.metrics import Metrics

Body = Callable[..., dict[str, Any]]


@pytest.fixture
def host(serve_home: Path) -> Iterator[tuple[ModelHost, Workspace]]:
    """A host over a workspace copy serving shop@champion (polled by hand, no thread)."""
    ws = Workspace.open(serve_home)
    metrics = Metrics(["shop"])
    host = ModelHost(ws.catalog, ws.store, [Target.parse("shop@champion")], metrics=metrics,
                     actor="server", golden_rows=8)  # fmt: skip
    host.load()
    try:
        yield host, ws
    finally:
        host.stop()
        ws.close()


def move(ws: Workspace, version_id: str) -> None:
    ws.catalog.move_alias("shop", "champion", version_id, reason="test")


def audited(ws: Workspace, action: str) -> list[dict[str, Any]]:
    return [e.payload for e in ws.catalog.audit_events(limit=50) if e.action == action][::-1]


def test_a_moved_alias_is_swapped_and_audited_and_the_old_version_kept(
    host: tuple[ModelHost, Workspace], trained: Any
) -> None:
    h, ws = host
    slot = h.slots[0]
    first = slot.current
    assert first is not None
    assert first.ref == "shop:v1"
    assert h.poll() == []  # nothing moved
    move(ws, trained.versions["v2"])
    assert h.poll() == ["shop@champion: shop:v1 -> shop:v2 (swapped)"]
    assert slot.current is not None
    assert slot.current.ref == "shop:v2"
    assert slot.previous is first
    assert h.resolve("shop", "v2")[1] is slot.current
    swap = audited(ws, "serve.swap")[-1]
    assert (swap["from"], swap["to"], swap["outcome"]) == ("shop:v1", "shop:v2", "swapped")
    assert swap["golden_rows"] == 8
    assert 0.0 <= swap["golden_agreement"] <= 1.0
    move(ws, trained.versions["v1"])
    assert h.poll() == ["shop@champion: shop:v2 -> shop:v1 (swapped_back)"]
    assert slot.current is first  # back at once: nothing loaded
    text = h.metrics.render().decode() if h.metrics else ""
    assert 'outcome="swapped_back"' in text


def test_an_incompatible_version_is_refused_audited_once_and_not_served(
    host: tuple[ModelHost, Workspace], trained: Any
) -> None:
    h, ws = host
    move(ws, trained.versions["v3"])
    events = h.poll()
    assert len(events) == 1
    assert "refused shop:v3" in events[0]
    assert "input 'visits' (INT64) is new" in events[0]
    assert h.slots[0].current is not None
    assert h.slots[0].current.ref == "shop:v1"
    refused = audited(ws, "serve.swap_refused")
    assert len(refused) == 1
    assert (refused[0]["from"], refused[0]["to"]) == ("shop:v1", "shop:v3")
    assert refused[0]["problems"] == ["input 'visits' (INT64) is new"]
    assert h.poll() == []  # not tried again while the alias stays there
    assert len(audited(ws, "serve.swap_refused")) == 1
    move(ws, trained.versions["v2"])  # a compatible move afterwards is taken
    assert h.poll() == ["shop@champion: shop:v1 -> shop:v2 (swapped)"]


def test_a_version_that_cannot_be_loaded_is_refused_and_the_old_one_keeps_serving(
    host: tuple[ModelHost, Workspace], trained: Any
) -> None:
    h, ws = host
    v2 = ws.catalog.get_system_version(trained.versions["v2"])
    artifact = ws.catalog.get_component_versions([v2.manifest["buyer"]])[
        v2.manifest["buyer"]
    ].artifact
    assert artifact is not None
    path = next(Path(ws.store.url).rglob(artifact))
    good = path.read_bytes()
    path.write_bytes(b"damaged")
    move(ws, v2.id)
    events = h.poll()
    assert len(events) == 1
    assert events[0].startswith("shop@champion: failed shop:v2: ")
    assert "regrow doctor" in events[0]  # the error names the way out
    failed = audited(ws, "serve.swap_failed")
    assert len(failed) == 1
    assert failed[0]["from"] == "shop:v1"
    assert h.slots[0].current is not None
    assert h.slots[0].current.ref == "shop:v1"
    assert h.poll() == []  # not tried again at once
    path.unlink()  # the store is repaired: the artifact is back
    ws.store.put(good)
    h.slots[0].retry_at = dict.fromkeys(h.slots[0].retry_at, 0.0)  # the retry delay is over
    assert h.poll() == ["shop@champion: shop:v1 -> shop:v2 (swapped)"]


def test_a_refused_version_is_tried_again_once_the_alias_moved_elsewhere(
    host: tuple[ModelHost, Workspace], trained: Any
) -> None:
    h, ws = host
    move(ws, trained.versions["v3"])
    assert "refused shop:v3" in h.poll()[0]
    move(ws, trained.versions["v1"])  # back where the server is
    assert h.poll() == []
    move(ws, trained.versions["v3"])
    assert "refused shop:v3" in h.poll()[0]  # looked at again, and refused again
    assert len(audited(ws, "serve.swap_refused")) == 2


def test_a_rollback_during_the_load_is_followed_not_the_loaded_version(
    host: tuple[ModelHost, Workspace], trained: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    h, ws = host
    load = h.load_version

    def slow_load(record: Any) -> Any:
        loaded = load(record)
        move(ws, trained.versions["v1"])  # rolled back while v2 was loading
        return loaded

    monkeypatch.setattr(h, "load_version", slow_load)
    move(ws, trained.versions["v2"])
    assert h.poll() == []
    assert h.slots[0].current is not None
    assert h.slots[0].current.ref == "shop:v1"
    assert audited(ws, "serve.swap") == []


def test_requests_queued_on_the_old_version_finish_on_it(
    host: tuple[ModelHost, Workspace], trained: Any, infer_body: Body
) -> None:
    h, ws = host
    old = h.slots[0].current
    assert old is not None
    columns = {k: v[:2] for k, v in old.golden.items()}

    async def main() -> dict[str, np.ndarray]:
        pending = old.batcher.enqueue(columns, 2, None)  # queued, not yet scored
        move(ws, trained.versions["v2"])
        h.poll()  # swaps while the request waits
        assert h.slots[0].current is not old
        return await pending

    outputs = asyncio.run(main())
    np.testing.assert_allclose(outputs["probabilities"], old.score(columns)["probabilities"])


def test_a_live_server_follows_alias_moves_under_concurrent_requests_without_failures(
    serve_home: Path, trained: Any, live_server: Callable[..., Any], infer_body: Body
) -> None:
    config = serve_home / "config.toml"
    config.write_text(config.read_text() + "\n[serve]\npoll_seconds = 0.2\n")
    server = live_server(serve_home)
    url = f"{server.url}/v2/models/shop/infer"
    stop = threading.Event()
    seen: Counter[str] = Counter()
    failures: list[str] = []
    lock = threading.Lock()

    def hammer(worker: int) -> None:
        with httpx.Client(timeout=30) as client:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    response = client.post(url, json=infer_body(1 + n % 3, seed=worker))
                    version = response.json()["parameters"]["system_version"]
                    ok = response.status_code == 200
                except Exception as exc:
                    ok, version = False, repr(exc)
                with lock:
                    if ok:
                        seen[version] += 1
                    else:
                        failures.append(version)

    def served_now() -> str:
        meta = httpx.get(f"{server.url}/v2/models/shop", timeout=10).json()
        return str(meta["parameters"]["system_version"])

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    try:
        with Workspace.open(serve_home) as ws:
            for target in ("v2", "v1", "v2", "v1", "v2"):
                time.sleep(0.3)
                move(ws, trained.versions[target])
                deadline = time.monotonic() + 20
                while served_now() != f"shop:{target}" and time.monotonic() < deadline:
                    time.sleep(0.05)
                assert served_now() == f"shop:{target}"
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert failures == []
    assert set(seen) == {"shop:v1", "shop:v2"}
    assert sum(seen.values()) > 50
    with Workspace.open(serve_home) as ws:
        swaps = audited(ws, "serve.swap")
    assert [(s["from"], s["to"]) for s in swaps] == [
        ("shop:v1", "shop:v2"), ("shop:v2", "shop:v1"), ("shop:v1", "shop:v2"),
        ("shop:v2", "shop:v1"), ("shop:v1", "shop:v2"),
    ]  # fmt: skip
    assert [s["outcome"] for s in swaps] == ["swapped"] + ["swapped_back"] * 4
    assert server.stop() == 0


def test_the_golden_set_is_rows_every_member_can_take(tmp_path: Path) -> None:
    """A version whose boosted member was refit on a window with nulls, beside a linear
    member that takes none: its golden set is the window's complete rows, so it serves (it
    was refused: "fails on its golden set: Input X contains NaN", in a user trial)."""
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression

    from regrow import Ensemble, Member, System
    from regrow.errors import DataQualityWarning
    from regrow.serve.served import load_served

    rng = np.random.default_rng(0)

    def rows(n: int) -> pd.DataFrame:
        x = rng.normal(size=(n, 2))
        return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "y": (x.sum(axis=1) > 0).astype(int)})

    system = System("nulls", target="y", components=[
        Member("lr", LogisticRegression(), inputs=["a", "b"]),
        Member("hgb", HistGradientBoostingClassifier(max_iter=10), inputs=["a", "b"]),
        Ensemble("mean", weights={"lr": 1.0, "hgb": 1.0}),
    ])  # fmt: skip
    window = rows(400)
    window.loc[:40, "a"] = np.nan  # the first rows miss an input
    with Workspace.init(tmp_path / "ws") as ws:
        v1 = ws.train(system, ws.snapshot(rows(400), name="clean")).version
        with pytest.warns(DataQualityWarning, match="nulls"):
            holes = ws.snapshot(window, name="holes")
        v2 = ws.update(v1.ref, holes, components=["hgb"]).version
        served = load_served(ws.catalog, ws.store, v2)
        assert served.check() == []
        assert not np.isnan(served.golden["a"]).any()
