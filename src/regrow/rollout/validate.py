"""What a rollout is started with, checked before anything is written.

:func:`candidates` resolves the candidate versions (one; several of one system for mode
``ab``), :func:`check_blend` refuses a blend of versions that do not predict the same thing,
:func:`check_slices` refuses a slice that is no boolean pandas expression over the columns a
served request carries (:func:`served_columns`), :func:`check_loss_cap` a regressor's rollout
without ``loss_cap``: each raises :class:`~regrow.errors.ConfigError` naming the value, with a
hint. :func:`check_exposure` raises :class:`~regrow.errors.PromotionRefused` when a rollout
would serve a candidate to every request of a protected alias that its promotion rules do not
yet allow.

>>> MODES
('split', 'ab', 'blend', 'shadow', 'blue-green')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from regrow.errors import ConfigError, PromotionRefused

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog
    from regrow.catalog.records import SystemVersionRecord

__all__ = [
    "MODES",
    "candidates",
    "check_blend",
    "check_exposure",
    "check_loss_cap",
    "check_slices",
    "parse_steps",
    "percent",
    "served_columns",
    "served_share",
]

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


def percent(share: float) -> str:
    """``share`` as a percentage, with the decimals a share under 10% needs (0.5%, not 0%).

    >>> percent(0.25), percent(0.005), percent(0.0), percent(0.0125)
    ('25%', '0.5%', '0%', '1.25%')
    """
    if share == 0 or share >= 0.1:
        return f"{share:.0%}"
    return f"{share * 100:.2f}".rstrip("0").rstrip(".") + "%"


def served_share(state: Any, share: Any) -> Any:
    """The candidate's share of traffic in ``state``: all of it once promoted (it holds the
    alias; the machine records share 0 as the rollout no longer routes, which read like a
    rollback), else ``share``.

    >>> served_share("promoted", 0.0), served_share("rolled_back", 0.0)
    (1.0, 0.0)
    >>> served_share("progressing", 0.25)
    0.25
    """
    return 1.0 if state == "promoted" else share


def parse_steps(text: str | Sequence[float]) -> tuple[float, ...]:
    """Shares from ``"5,25,50,100"`` (percent, when any is above 1) or ``"0.05,0.5,1"``.

    >>> parse_steps("5,25,50,100")
    (0.05, 0.25, 0.5, 1.0)
    """
    try:
        values = [float(v) for v in (text.split(",") if isinstance(text, str) else text)]
    except ValueError:
        raise ConfigError(
            f"rollout steps {text!r} are not numbers", hint="write shares such as 5,25,50,100"
        ) from None
    if any(v > 1 for v in values):
        values = [v / 100 for v in values]
    return tuple(values)


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
    """Refuse a slice that is no boolean pandas expression over the columns a served request
    of the candidate carries (:func:`served_columns`: not the target, not a time column the
    model does not read)."""
    columns = served_columns(catalog, version)
    frame = _sample(columns, _dtypes(catalog, version))
    known = ", ".join(columns) or "unknown"
    out: dict[str, str] = {}
    for name, expression in slices.items():
        if not isinstance(name, str) or not name.strip() or not isinstance(expression, str):
            raise ConfigError(
                f"slice {name!r}: {expression!r} is not a name and an expression",
                hint="write --slice NAME=EXPR, e.g. --slice seniors='age >= 65'",
            )
        try:
            picked = frame.eval(expression) if columns else compile(expression, "<slice>", "eval")
        except Exception as exc:  # pandas raises many kinds for a bad expression
            raise ConfigError(
                f"slice {name!r} has a bad expression {expression!r}: {exc}",
                hint=f"a pandas query over the columns a request carries ({known})",
            ) from None
        dtype = getattr(picked, "dtype", None)
        if columns and (dtype is None or dtype.kind != "b"):
            raise ConfigError(
                f"slice {name!r} ({expression!r}) gives {dtype or type(picked).__name__} "
                "values, not True/False for each row",
                hint=f"a slice selects rows: write a comparison, e.g. '{expression} > 0'",
            )
        out[name] = expression
    return out


def check_loss_cap(version: SystemVersionRecord, loss_cap: float | None) -> None:
    """A regressor's loss is its absolute error over ``loss_cap``: a rollout of one needs it."""
    task = version.spec.get("task") if isinstance(version.spec, dict) else None
    if loss_cap is None and task == "regression":
        raise ConfigError(
            f"{version.ref} is a regressor: its rollout needs a loss_cap",
            hint="start it with --loss-cap ERROR (loss_cap=ERROR): the absolute error counted "
            "as a total miss",
        )


def check_exposure(
    lacks: Callable[[str, str], list[str]],
    versions: Sequence[SystemVersionRecord],
    alias: str,
    mode: str,
    shares: Sequence[float],
) -> None:
    """A rollout that would serve a candidate to every request of ``alias`` before it is
    promoted (any mode but shadow whose steps reach 1.0) needs, at its start, what promoting
    each candidate needs (``lacks(ref, alias)``: :meth:`regrow.Workspace.promotion_lacks`,
    the check a promotion runs). A shadow rollout serves nothing and needs nothing."""
    if mode == "shadow" or max(shares, default=0.0) < 1.0:
        return
    for v in versions:
        missing = [x for x in lacks(v.ref, alias) if not x.endswith("would change nothing")]
        if missing:
            raise PromotionRefused(
                f"a {mode} rollout would serve {v.ref} to every request of {v.system}@{alias} "
                "before its promotion, and promoting it lacks " + "; ".join(missing),
                hint="meet the promotion rules first (`regrow approve`, a blessed `regrow "
                "evaluate`), or compare it in --mode shadow, which serves nothing",
            )


def served_columns(catalog: Catalog, version: SystemVersionRecord) -> list[str]:
    """The columns a request served by ``version`` carries: those its members and transforms
    read (the served signature's inputs), never the target.

    Empty when the version's spec does not name its components.
    """
    from regrow.evaluate.gates.coverage import member_columns

    spec = version.spec if isinstance(version.spec, dict) else {}
    if not isinstance(spec.get("components"), dict):
        return []
    return sorted(set().union(*member_columns(spec).values()))


def _dtypes(catalog: Catalog, version: SystemVersionRecord) -> dict[str, str]:
    """``column -> logical dtype`` of the candidate's training snapshot (empty without one)."""
    if version.snapshot_id is None:
        return {}
    spec = catalog.snapshot_schema(version.snapshot_id).spec
    cols = spec.get("columns") if isinstance(spec, dict) else None
    if isinstance(cols, list):
        cols = {c.get("name"): c for c in cols if isinstance(c, dict)}
    out: dict[str, str] = {}
    for name, info in (cols or {}).items():
        dtype = info.get("dtype") if isinstance(info, dict) else info
        if isinstance(dtype, str):
            out[str(name)] = dtype
    return out


def _sample(columns: list[str], dtypes: Mapping[str, str] | None = None) -> Any:
    """One row with a value of each column's kind, to evaluate a slice on."""
    import pandas as pd

    values = {"int": 0, "bool": False, "string": "", "category": "",
              "datetime": pd.Timestamp("2026-01-01")}  # fmt: skip
    kinds = dtypes or {}
    return pd.DataFrame({c: [values.get(kinds.get(c, "float"), 0.0)] for c in columns})
