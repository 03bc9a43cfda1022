"""One served version: loaded, warmed, checked on a golden set, scoring through a batcher.

:func:`load_served` reads a system version's fitted components from the store (each artifact
once, however many versions share it: ``memo``), works out its
:class:`~regrow.serve.signature.Signature` from the schema of the snapshot it was trained on,
takes the first rows of that snapshot without a missing input as its **golden set** (the
first rows, when every row misses one), and warms the model by scoring
them (scikit-learn and friends build caches on their first call). :meth:`Served.check` says
what is wrong with its outputs on the golden set (wrong shape, classes it does not know,
probabilities that are not probabilities); a hot swap refuses a version with problems.

:meth:`Served.score` is the one scoring path, for the HTTP app and ``regrow predict`` alike:
input columns (as :func:`regrow.serve.oip.decode` coerced them) in, ``predict`` (and
``probabilities`` for classification) out. It runs the members on NumPy matrices when the
version's graph allows it and that gives the system's own outputs on the golden set
(:mod:`.direct`), else the system on a DataFrame. Requests reach it through
:attr:`Served.batcher`, and each call reports to an ``on_scored`` hook: the app logs the rows
and counts them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from regrow.errors import ComponentError, SystemSpecError
from regrow.serve.batching import Batcher, Columns
from regrow.serve.direct import Direct, direct_path
from regrow.serve.signature import Signature

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog
    from regrow.catalog.records import SystemVersionRecord
    from regrow.catalog.store import ArtifactStore
    from regrow.components.fitted import FittedComponent
    from regrow.model import FittedSystem

__all__ = ["GOLDEN_ROWS", "OnScored", "Served", "Ticket", "load_served"]

log = logging.getLogger("regrow.serve")

#: Rows of the training snapshot a version is warmed and checked on.
GOLDEN_ROWS = 32


@dataclass(frozen=True)
class Ticket:
    """Which request rows of a batch came from: its id, its number of rows, its lane, and
    the rollout that routed it (``""``: none)."""

    request_id: str
    rows: int
    lane: str
    rollout: str = ""


#: Told of every successful call: the version, its input columns, outputs, and the tickets.
OnScored = Callable[["Served", Columns, dict[str, np.ndarray], list[Ticket]], None]


class Served:
    """A loaded version ready to score (see the module docs)."""

    def __init__(
        self,
        version: SystemVersionRecord,
        model: FittedSystem,
        signature: Signature,
        *,
        golden: dict[str, np.ndarray] | None = None,
        members: dict[str, str] | None = None,
        max_rows: int = 10_000,
        on_scored: OnScored | None = None,
        direct: Direct | None = None,
    ) -> None:
        self.version = version
        #: The short path for this version's graph, if it has one (:mod:`.direct`).
        self.direct = direct
        self.model = model
        self.signature = signature
        self.golden = golden or {}
        #: Member name -> its component version id (the metrics label predictions with it).
        self.members = dict(members or {})
        self.on_scored = on_scored
        self.batcher = Batcher(self._score_batch, max_rows=max_rows)
        self._names = signature.input_names
        self._index = pd.Index(self._names)
        self._classes = (
            np.asarray(signature.classes, dtype=object if _mixed(signature.classes) else None)
            if signature.classes is not None
            else None
        )

    def __repr__(self) -> str:
        return f"Served({self.version.ref!r})"

    @property
    def ref(self) -> str:
        """The version's reference, e.g. ``churn:v2``."""
        return self.version.ref

    def frame(self, columns: Columns) -> pd.DataFrame:
        """The input frame of ``columns``, in the signature's order.

        Columns of one numeric dtype (20 floats, say) become one block at once, ten times
        faster than pandas assembling it from a dict.
        """
        arrays = [columns[name] for name in self._names]
        dtype = arrays[0].dtype if arrays else None
        if dtype is not None and dtype.kind in "fiub" and all(a.dtype == dtype for a in arrays):
            return pd.DataFrame(np.column_stack(arrays), columns=self._index, copy=False)
        return pd.DataFrame(dict(zip(self._names, arrays, strict=True)))

    def score(self, columns: Columns) -> dict[str, np.ndarray]:
        """The outputs for ``columns`` (see the module docs)."""
        if self.direct is not None:
            out = self.direct.output(columns)
        elif self._classes is None:
            out = self.model.predict(self.frame(columns))
        else:
            out = self.model.predict_proba(self.frame(columns))
        if self._classes is None:
            return {"predict": np.asarray(out, dtype=np.float64)}
        proba = np.ascontiguousarray(out, dtype=np.float64)
        return {"predict": self._classes[proba.argmax(axis=1)], "probabilities": proba}

    def _score_batch(self, columns: Columns, tickets: list[Ticket]) -> dict[str, np.ndarray]:
        outputs = self.score(columns)
        if self.on_scored is not None:
            try:
                self.on_scored(self, columns, outputs, tickets)
            except Exception:  # logging or counting failed: the predictions still stand
                log.exception("recording a predict call of %s failed", self.ref)
        return outputs

    def warm(self) -> None:
        """Score one row and the golden set, so that the first request does not pay for the
        caches a model builds on its first call."""
        if self.golden:
            with np.errstate(all="ignore"):
                self.score({k: v[:1] for k, v in self.golden.items()})
                self.score(self.golden)

    def check(self) -> list[str]:
        """What is wrong with the outputs on the golden set (empty: nothing)."""
        if not self.golden:
            return []
        rows = len(next(iter(self.golden.values())))
        try:
            with np.errstate(all="ignore"):
                out = self.score(self.golden)
        except Exception as exc:
            return [f"it fails on the golden set: {type(exc).__name__}: {exc}"]
        problems: list[str] = []
        predict = out.get("predict")
        if predict is None or predict.shape != (rows,):
            problems.append(f"'predict' has shape {getattr(predict, 'shape', None)}, not ({rows},)")
        elif self._classes is None:
            if not np.isfinite(predict).all():
                problems.append("'predict' holds values that are not finite numbers")
        else:
            unknown = {v for v in predict.tolist() if v not in set(self._classes.tolist())}
            if unknown:
                problems.append(
                    f"'predict' holds labels {sorted(map(str, unknown))} not in classes"
                )
            proba = out["probabilities"]
            sums = proba.sum(axis=1) if proba.ndim == 2 else None
            if sums is None or proba.shape != (rows, len(self._classes)):
                problems.append(f"'probabilities' has shape {proba.shape}")
            elif not np.isfinite(proba).all() or not np.allclose(sums, 1.0, atol=1e-6):
                problems.append("'probabilities' rows are not probabilities (sum to 1)")
        return problems

    def agreement(self, other: Served) -> float | None:
        """On the golden set: the share of equal labels (classification), or the mean absolute
        difference (regression) between this version and ``other``; None without a set."""
        if not self.golden:
            return None
        try:
            with np.errstate(all="ignore"):
                mine = self.score(self.golden)["predict"]
                theirs = other.score(self.golden)["predict"]
        except Exception:
            return None
        if self._classes is None:
            return float(np.mean(np.abs(mine - theirs)))
        return float(np.mean(mine == theirs))


def load_served(
    catalog: Catalog,
    store: ArtifactStore,
    version: SystemVersionRecord,
    *,
    memo: dict[str, FittedComponent] | None = None,
    home: str | None = None,
    golden_rows: int = GOLDEN_ROWS,
    max_rows: int = 10_000,
    on_scored: OnScored | None = None,
) -> Served:
    """Load ``version``, read its signature and golden set, and warm it (module docs)."""
    from regrow.components.base import Member
    from regrow.model import FittedSystem
    from regrow.services import load_components, read_frame

    fitted, artifacts = load_components(catalog, store, version, home=home, memo=memo)
    model = FittedSystem(version.spec, fitted, ref=version.ref, artifacts=artifacts)
    if version.snapshot_id is None:
        raise SystemSpecError(
            f"{version.ref} records no training snapshot, so its inputs are unknown",
            hint="serve a version trained on a snapshot (regrow train)",
        )
    schema = catalog.snapshot_schema(version.snapshot_id).spec
    signature = Signature.of(version.spec, schema, model.classes_)
    golden: dict[str, np.ndarray] = {}
    if golden_rows > 0 and signature.inputs:
        frame = read_frame(catalog, store, version.snapshot_id, signature.input_names, home=home)
        complete = frame.dropna()  # a member that takes no nulls (a window's rows had some)
        rows = (complete if len(complete) else frame).head(golden_rows)
        golden = {c: rows[c].to_numpy() for c in signature.input_names} if len(rows) else {}
    members = {
        name: vid for name, vid in version.manifest.items() if isinstance(fitted[name].spec, Member)
    }
    served = Served(
        version,
        model,
        signature,
        golden=golden,
        members=members,
        max_rows=max_rows,
        on_scored=on_scored,
        direct=direct_path(model, signature, golden),
    )
    try:
        served.warm()
    except Exception as exc:
        raise ComponentError(
            f"{version.ref} fails on its golden set (the first complete rows of its "
            f"training snapshot): {type(exc).__name__}: {exc}",
            hint=f"check that {version.ref} predicts with ws.load({version.ref!r}).predict(...)",
        ) from exc
    return served


def _mixed(classes: tuple[Any, ...] | None) -> bool:
    return classes is not None and len({type(c) for c in classes}) > 1
