"""Screening a window before planning: set rows aside as the policy allows, or stop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from regrow.errors import PlanError
from regrow.monitor.data_quality import ColumnFinding, WindowCheck
from regrow.plan.policy import Planning
from regrow.plan.screen import screen


def finding(column: str, kind: str, rows: list[int], **kw: object) -> ColumnFinding:
    fields: dict = {
        "values": (),
        "readers": ("usage",),
        "blocked": (),
        "unusable": False,
        "why": f"{len(rows)} {kind}",
        "what": f"{len(rows)} {kind}",
        **kw,
    }
    return ColumnFinding(column, kind, len(rows), tuple(rows[:5]), **fields)


def window(n: int, findings: list[ColumnFinding], bad: list[int] | None = None) -> WindowCheck:
    unusable = np.zeros(n, bool)
    unusable[bad or []] = True
    frame = pd.DataFrame({"x": np.arange(n, dtype=float), "y": np.ones(n)})
    return WindowCheck(n, tuple(findings), frame, unusable)


def test_rows_a_member_cannot_take_are_set_aside_and_said_so() -> None:
    blocked = finding("calls", "nulls", [5, 10], blocked=("usage",), unusable=True)
    taken = finding("fee", "nulls", [3], readers=("account",))
    screened = screen(window(100, [blocked, taken], [5, 10]), Planning(), target="y")
    assert len(screened.rows) == 98
    assert screened.set_aside == 2
    assert screened.lines[0].startswith("set aside 2 of 100 rows (2.0%)")
    assert "'calls'" in screened.lines[0]
    assert any("'fee'" in line for line in screened.lines[1:])
    assert screened.data() == {"set_aside_rows": 2, "as_trained": True}


def test_a_clean_window_changes_nothing_the_run_sees() -> None:
    screened = screen(window(10, []), Planning(), target="y")
    assert screened.data() == {}
    assert screened.lines == ()


def test_the_stop_policy_names_the_column_the_rows_and_what_to_do() -> None:
    blocked = finding("calls", "nulls", [5, 10], blocked=("usage",), unusable=True)
    with pytest.raises(PlanError) as caught:
        screen(window(100, [blocked], [5, 10]), Planning(unusable_rows="stop"), target="y")
    message = str(caught.value)
    for text in ("2 of 100 rows", "'calls'", "member 'usage' cannot take them",
                 "planning.unusable_rows is stop", "handle_unknown='ignore'"):  # fmt: skip
        assert text in message


def test_too_many_unusable_rows_stop_even_when_dropping_is_allowed() -> None:
    bad = list(range(10))
    unseen = finding("region", "unseen", bad, blocked=("geo",), unusable=True)
    with pytest.raises(PlanError, match=r"above planning.max_unusable_share \(5%\)"):
        screen(window(100, [unseen], bad), Planning(), target="y")
    relaxed = screen(window(100, [unseen], bad), Planning(max_unusable_share=0.2), target="y")
    assert relaxed.set_aside == 10


@pytest.mark.parametrize(
    ("broken", "hint"),
    [
        (finding("fee", "missing", list(range(50)), what="missing (renamed?)"), "rename"),
        (finding("fee", "nulls", list(range(50))), "fix the feed that fills 'fee'"),
        (finding("fee", "type", list(range(50)), unusable=True), "fix the feed"),
    ],
)
def test_a_column_without_a_usable_value_stops_planning(broken: ColumnFinding, hint: str) -> None:
    with pytest.raises(PlanError, match="cannot plan on this window: 'fee'") as caught:
        screen(window(50, [broken]), Planning(), target="y")
    assert hint in str(caught.value)


def test_findings_about_the_target_never_stop_planning() -> None:
    unlabelled = finding("y", "nulls", list(range(50)), readers=())
    assert len(screen(window(50, [unlabelled]), Planning(), target="y").rows) == 50
