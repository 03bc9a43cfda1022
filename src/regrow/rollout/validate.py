"""What a rollout is started with, checked before anything is written.

:func:`candidates` resolves the candidate versions (one; several of one system for mode
``ab``), :func:`check_blend` refuses a blend of versions that do not predict the same thing,
:func:`check_slices` refuses a slice that is no pandas expression over the candidate's training
columns. Each raises :class:`~regrow.errors.ConfigError` naming the value, with a hint.

>>> MODES
('split', 'ab', 'blend', 'shadow', 'blue-green')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from regrow.errors import ConfigError

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog
    from regrow.catalog.records import SystemVersionRecord

__all__ = ["MODES", "candidates", "check_blend", "check_slices"]

#: The rollout modes :func:`regrow.rollout.machine.start` takes.
MODES = ("split", "ab", "blend", "shadow", "blue-green")


def candidates(
    catalog: Catalog, candidate: str | Sequence[str], mode: str
) -> list[SystemVersionRecord]:
    """The candidate versions: one, or (mode ``ab``) one or more of one system."""
    refs = [candidate] if isinstance(candidate, str) else list(candidate)
    if not refs or (len(refs) > 1 and mode != "ab"):
        raise ConfigError(
            f"a {mode} rollout takes one candidate (got {len(refs)})",
            hint="roll two or more candidates out at once with --mode ab",
        )
    versions = [catalog.get_system_version(ref) for ref in refs]
    for ref, v in zip(refs, versions, strict=True):
        if v.system != versions[0].system:
            raise ConfigError(
                f"candidate {ref!r} is a version of {v.system!r}, not of {versions[0].system!r}",
                hint="the lanes of an ab rollout are versions of one system",
            )
    if len({v.id for v in versions}) != len(versions):
        raise ConfigError(f"candidates {refs} name a version twice", hint="name each once")
    return versions


def check_blend(catalog: Catalog, stable_id: str, candidate: SystemVersionRecord) -> None:
    """A blend averages the two versions' outputs: same task, same target."""
    stable = catalog.get_system_version(stable_id)

    def shape(v: SystemVersionRecord) -> tuple[Any, Any]:
        spec = v.spec if isinstance(v.spec, dict) else {}
        return spec.get("task"), spec.get("target")

    if shape(stable) != shape(candidate):
        (task, target), (was, had) = shape(candidate), shape(stable)
        raise ConfigError(
            f"candidate {candidate.ref} ({task} of {target!r}) cannot be blended with "
            f"{stable.ref} ({was} of {had!r})",
            hint="a blend mixes class probabilities or values of one task and target; "
            "use --mode split or shadow",
        )


def check_slices(
    catalog: Catalog, version: SystemVersionRecord, slices: Mapping[str, str]
) -> dict[str, str]:
    """Refuse a slice that is no pandas expression over the candidate's training columns."""
    import pandas as pd

    columns = _columns(catalog, version)
    frame = pd.DataFrame({c: pd.Series([], dtype="float64") for c in columns})
    out: dict[str, str] = {}
    for name, expression in slices.items():
        if not isinstance(name, str) or not name.strip() or not isinstance(expression, str):
            raise ConfigError(
                f"slice {name!r}: {expression!r} is not a name and an expression",
                hint="write --slice NAME=EXPR, e.g. --slice seniors='age >= 65'",
            )
        try:
            if columns:
                frame.eval(expression)
            else:
                compile(expression, "<slice>", "eval")
        except Exception as exc:  # pandas raises many kinds for a bad expression
            known = ", ".join(columns) or "unknown"
            raise ConfigError(
                f"slice {name!r} has a bad expression {expression!r}: {exc}",
                hint=f"a pandas query over the input columns ({known})",
            ) from None
        out[name] = expression
    return out


def _columns(catalog: Catalog, version: SystemVersionRecord) -> list[str]:
    """The input columns of the candidate's training snapshot: its columns but the target,
    which a request does not send (empty if it has no snapshot)."""
    if version.snapshot_id is None:
        return []
    spec = catalog.snapshot_schema(version.snapshot_id).spec
    cols = spec.get("columns") if isinstance(spec, dict) else None
    names: list[str] = []
    if isinstance(cols, dict):
        names = [str(c) for c in cols]
    elif isinstance(cols, list):
        names = [str(c.get("name")) if isinstance(c, dict) else str(c) for c in cols]
    target = version.spec.get("target") if isinstance(version.spec, dict) else None
    return [c for c in names if c != target]
