"""The demo's last act: v2 goes live through a short canary that the server steps by itself.

v2 passed its gates offline and its reviewer approved it; what is left is live traffic. A split
rollout sends a quarter of requests (by a hash of the request id) to v2 and the rest to v1,
then all of them; the server routes each request by the rollout's lanes, logs it with its lane,
and analyses the rollout on a timer (``[serve] rollout_step_seconds``): once enough labelled
requests of this step came back and v2's loss is not proven higher, it advances, and at the
last step it promotes v2 when its loss is proven no worse than v1's, by always-valid confidence
sequences (so looking after every batch does not inflate false decisions). Each move is an
audit event with its evidence (``regrow rollout history``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from regrow._demo_serving import send_labels, send_rows
from regrow.errors import AliasConflict, ConfigError
from regrow.rollout import machine

if TYPE_CHECKING:
    from regrow.workspace import Workspace

__all__ = ["CANARY_STEPS", "canary"]

#: The canary's shares of requests: a quarter, then everything.
CANARY_STEPS = (0.25, 1.0)
_ROWS_PER_REQUEST = 5
_REQUESTS_PER_ROUND = 200


def canary(
    ws: Workspace,
    url: str,
    labeller: str,
    candidate: str,
    traffic: pd.DataFrame,
    flush: Callable[[], None],
    say: Callable[[str], None],
    *,
    min_requests: int = 150,  # v1's share then holds ~450 requests: see below
    wait: float = 20.0,
) -> dict[str, Any]:
    """Roll ``candidate`` out against the champion on ``traffic`` (inputs with a ``churned``
    label column), a round of requests at a time, until the server's stepper promotes it or
    rolls it back; what happened, for the demo's summary.

    The last step promotes once v2's loss is proven no worse than what v1 showed at the first
    step, so v1's requests there set how soon: with ``min_requests`` 50, v1 had about 150
    and the promotion came at 7,000 of the 8,000 rows, and on some request-id splits after
    the traffic ran out (a rollback, seen under a loaded test run); with 150 it comes at
    4,000-5,000.
    """
    record = machine.start(
        ws, candidate, steps=CANARY_STEPS, min_requests=min_requests,
        reason="demo: canary of the approved update",
    )  # fmt: skip
    say(
        f"rollout {record.id[:12]}: canary of {candidate} against churn@champion, "
        f"{' -> '.join(f'{s:.0%}' for s in CANARY_STEPS)} of requests; the server analyses it "
        "every half second"
    )
    inputs = traffic.drop(columns=["ts", "churned"])
    per_round = _ROWS_PER_REQUEST * _REQUESTS_PER_ROUND
    sent = 0
    for start in range(0, len(traffic), per_round):
        rows = slice(start, start + per_round)
        ids = send_rows(url, "churn", inputs.iloc[rows], per_request=_ROWS_PER_REQUEST)
        send_labels(url, "churn", labeller, ids, traffic["churned"].iloc[rows].tolist())
        sent += len(ids)
        flush()
        record = _analysed(ws, record.id, wait)
        step = f"step {record.step + 1} ({record.share:.0%})" if record.active else record.state
        say(f"  {sent:,} rows sent and labelled: {step}, {_evidence(record.evidence)}")
        if not record.active:
            break
    if record.active:  # traffic ran out first: the last known good stays
        record = _abort(ws, record.id)
    return {
        "rollout": record.id[:12],
        "state": record.state,
        "rows": sent,
        "moves": [e.action.removeprefix("rollout.") for e in machine.history(ws, record.id)],
    }


def _analysed(ws: Workspace, rollout_id: str, wait: float) -> Any:
    """The rollout once the server has analysed it twice more (every analysis moves it, a hold
    included): the second began after what was sent so far was logged."""
    deadline = time.monotonic() + wait
    revision = ws.catalog.rollouts.get(rollout_id).revision
    while True:
        record = ws.catalog.rollouts.get(rollout_id)
        if record.revision >= revision + 2 or not record.active:
            return record
        if time.monotonic() > deadline:
            raise ConfigError(
                f"the demo's server did not analyse rollout {rollout_id[:12]} in {wait:g} s",
                hint="this is a bug in the demo: please report it",
            )
        time.sleep(0.05)


def _abort(ws: Workspace, rollout_id: str) -> Any:
    """Abort the rollout, read afresh until the server's stepper (analysing it meanwhile)
    lets the abort through or ends it first."""
    while True:
        record = ws.catalog.rollouts.get(rollout_id)
        if not record.active:
            return record
        try:
            return machine.abort(ws, record, reason="demo: the canary ran out of traffic")
        except AliasConflict:
            continue


def _evidence(evidence: dict[str, Any] | None) -> str:
    if not evidence or evidence.get("candidate_loss") is None:
        return "no labelled candidate requests yet"
    return (
        f"error {evidence['candidate_loss']:.3f} on {evidence['candidate_requests']} v2 requests "
        f"against {evidence['stable_loss']:.3f} on {evidence['stable_requests']} v1 requests"
    )
