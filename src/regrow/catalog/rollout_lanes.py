"""The candidate lanes of an A/B rollout, as :mod:`regrow.catalog.rollouts` stores them.

An A/B rollout's row keeps its lanes in a JSON column, in their fixed order (the order fixes
where each lane's interval of :mod:`regrow.rollout.assign` starts): ``{"lane", "version_id",
"dropped"}`` each. :func:`stored_lanes` builds them for a new rollout, :func:`dropped_lanes`
marks lanes dropped; :class:`RolloutLane` is a lane as a record shows it.

>>> [x["lane"] for x in stored_lanes("ab", "v2", ["v2", "v3"])]
['candidate', 'candidate-2']
>>> stored_lanes("split", "v2", [])
[]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from regrow.catalog import checks
from regrow.errors import ConfigError

if TYPE_CHECKING:
    from regrow.catalog.models import Rollout

__all__ = ["RolloutLane", "dropped_lanes", "lane_name", "stored_lanes"]


def lane_name(k: int) -> str:
    """The name of the ``k``-th candidate lane (from 0): ``candidate``, ``candidate-2``, ...

    >>> lane_name(0), lane_name(2)
    ('candidate', 'candidate-3')
    """
    return "candidate" if k == 0 else f"candidate-{k + 1}"


@dataclass(frozen=True)
class RolloutLane:
    """A candidate lane of an A/B rollout: its ``name``, the version it serves, whether the
    analysis ``dropped`` it, and the ``share`` of requests it serves now (the step's share,
    capped at ``1/(K+1)`` for ``K`` lanes so that the stable lane keeps an equal part, while
    the rollout holds traffic; 0 once dropped)."""

    name: str
    version_id: str
    dropped: bool
    share: float


def stored_lanes(mode: str, candidate_id: str, lanes: Sequence[str]) -> list[dict[str, Any]]:
    """The stored lanes of a new rollout: one per candidate of an A/B rollout, else none."""
    versions = [checks.text("lane version", v) for v in lanes]
    if mode != "ab":
        if versions:
            raise ConfigError(
                f"a {mode} rollout has one candidate (got lanes {versions})",
                hint="roll several candidates out at once with mode ab",
            )
        return []
    if not versions or versions[0] != candidate_id or len(set(versions)) != len(versions):
        raise ConfigError(
            f"the lanes {versions} of an ab rollout must be distinct versions, the candidate "
            f"{candidate_id[:12]} first",
            hint="name each candidate once",
        )
    return [{"lane": lane_name(k), "version_id": v, "dropped": False}
            for k, v in enumerate(versions)]  # fmt: skip


def dropped_lanes(row: Rollout, drop: Sequence[str]) -> list[dict[str, Any]]:
    names = {lane["lane"] for lane in row.lanes}
    unknown = sorted(set(drop) - names)
    if unknown:
        raise ConfigError(
            f"rollout {row.id[:12]} has no lane {unknown[0]!r}",
            hint=f"its lanes are {', '.join(sorted(names)) or 'none (not an ab rollout)'}",
        )
    return [{**lane, "dropped": lane["dropped"] or lane["lane"] in drop} for lane in row.lanes]
