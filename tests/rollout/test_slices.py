"""Per-slice analysis: each slice of the traffic (a pandas query over the logged inputs)
gets its own always-valid comparison; a slice proven worse fails the rollout, naming it; a
bad slice expression is refused at start."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from regrow import Workspace
from regrow.catalog.rollouts import Rollouts
from regrow.errors import ConfigError
from regrow.rollout import machine
from regrow.rollout.decide import decide
from regrow.rollout.evidence import CANDIDATE, Evidence, read_evidence
from regrow.rollout.router import router_for

Log = Callable[..., None]


def _split(ws: Workspace, n: int, prefix: str) -> dict[str, list[str]]:
    router = router_for(ws.catalog, "toy")
    assert router is not None
    by: dict[str, list[str]] = {"main": [], CANDIDATE: []}
    for i in range(n):
        by[router.lane_for(f"{prefix}{i}")].append(f"{prefix}{i}")
    return by


def test_a_slice_proven_worse_fails_the_rollout_naming_it(ws: Workspace, log: Log) -> None:
    r = machine.start(ws, "toy:v2", steps="50,100", min_requests=60,
                      slices={"high": "x1 > 1", "low": "x1 <= 1"})  # fmt: skip
    assert r.params["slices"] == {"high": "x1 > 1", "low": "x1 <= 1"}
    by = _split(ws, 1200, "q")
    at = datetime.now(UTC) + timedelta(seconds=1)

    # a quarter of the traffic has x1 = 2 (slice "high"); the candidate gets all of it wrong
    def x1(ids: list[str]) -> list[float]:
        return [2.0 if k % 4 == 0 else 0.0 for k in range(len(ids))]

    main, cand = by["main"], by[CANDIDATE]
    log(at, "main", "toy:v1", main, set(main[1::4]), x1=x1(main))  # 25% wrong, in "low"
    log(at, CANDIDATE, "toy:v2", cand, set(cand[::4]), x1=x1(cand))  # 25% wrong, all "high"
    ev = read_evidence(ws.catalog, ws.store, Rollouts(ws.catalog).get(r.id))
    high = ev.slices["high"]
    assert (len(high.candidate), sum(high.candidate)) == (len(cand[::4]), len(cand[::4]))
    assert sum(high.stable) == 0
    assert len(ev.slices["low"].candidate) == len(cand) - len(cand[::4])
    # overall the two versions tie: only the slice shows the candidate is worse
    assert abs(sum(ev.candidate) / len(ev.candidate) - sum(ev.stable) / len(ev.stable)) < 0.03
    done = machine.step(ws, r.id)
    assert (done.action, done.rollout.state) == ("fail", "rolled_back")
    assert "slice 'high'" in done.rollout.reason
    evidence = done.rollout.evidence
    assert evidence is not None
    assert set(evidence["slices"]) == {"high", "low"}
    assert evidence["slices"]["high"]["decision"] == "fail"
    assert evidence["slices"]["low"]["decision"] in ("pass", "continue")


def test_slices_split_alpha_so_each_comparison_is_wider() -> None:
    ev = Evidence([0.0] * 100 + [1.0] * 30, [0.0] * 100 + [1.0] * 10, None, 130,
                  slices={"all": Evidence([0.0] * 100 + [1.0] * 30,
                                          [0.0] * 100 + [1.0] * 10, None, 130)})  # fmt: skip
    knobs = {"tolerance": 0.02, "alpha": 0.05}
    plain = decide(state="progressing", mode="split", step=0, steps=(0.5, 1.0), holds=0,
                   min_requests=100, params=knobs, evidence=Evidence(ev.candidate, ev.stable,
                                                                    None, 130))  # fmt: skip
    sliced = decide(state="progressing", mode="split", step=0, steps=(0.5, 1.0), holds=0,
                    min_requests=100, params={**knobs, "slices": {"all": "x1 > 0"}},
                    evidence=ev)  # fmt: skip
    assert plain.comparison is not None
    assert sliced.comparison is not None
    assert sliced.comparison.alpha == pytest.approx(0.025)
    assert sliced.comparison.lower < plain.comparison.lower
    assert sliced.details()["slices"]["all"]["alpha"] == pytest.approx(0.025)


def test_a_bad_slice_is_refused_at_start(ws: Workspace) -> None:
    with pytest.raises(ConfigError, match="slice 'old'"):
        machine.start(ws, "toy:v2", slices={"old": "age > 65"})  # no such column
    with pytest.raises(ConfigError, match="bad expression"):
        machine.start(ws, "toy:v2", slices={"broken": "x1 >"})
    with pytest.raises(ConfigError, match="slice 'labelled'"):
        machine.start(ws, "toy:v2", slices={"labelled": "y == 1"})  # the target is no input
    assert machine.status(ws) == []
    ok = machine.start(ws, "toy:v2", slices={"pos": "x1 > 0 and x2 < 1"})
    assert ok.params["slices"] == {"pos": "x1 > 0 and x2 < 1"}
