"""Checks on labels sent back for served rows, before they are stored.

A label is compared with the prediction of the version that served its row: a regressor's
with a number, a classifier's with one of its classes. :func:`check_labels` refuses, for one
call of :func:`regrow.logged.feedback` as a whole (nothing is stored), labels no version that
may have served the system could compare: the versions its aliases hold, the candidates of
its rollouts under way and its latest version. A label is accepted if one of them takes it:

* a **regressor** takes a finite number (``3``, ``2.5`` or ``"2.5"``; not ``"n/a"``, not
  ``true``);
* a **classifier** takes one of its classes, read as JSON sends them: ``1``, ``"1"`` and
  ``1.0`` are the same class (:func:`is_class`).

:func:`classes_of` gives a version's classes (the union of its members'), which
``regrow window --labelled`` checks against too.

>>> is_class("1", {0, 1}), is_class(1.0, {0, 1}), is_class("yes", {0, 1})
(True, True, False)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from regrow.errors import DataError

if TYPE_CHECKING:
    from regrow.catalog.catalog import Catalog
    from regrow.catalog.records import SystemVersionRecord

__all__ = ["check_labels", "classes_of", "is_class", "is_number"]

_SHOWN = 3


def classes_of(catalog: Catalog, version: SystemVersionRecord) -> set[Any]:
    """The classes ``version``'s members predict (empty: a regressor, or none recorded)."""
    if version.spec.get("task") != "classification":
        return set()
    records = catalog.get_component_versions(list(version.manifest.values()))
    known: set[Any] = set()
    for record in records.values():
        known.update(record.info.get("classes", []))
    return known


def is_number(label: Any) -> bool:
    """Whether a regressor's prediction can be compared with ``label``.

    >>> is_number(2), is_number("2.5"), is_number("n/a"), is_number(True), is_number(None)
    (True, True, False, False, False)
    """
    if isinstance(label, bool) or not isinstance(label, int | float | str):
        return False
    try:
        return math.isfinite(float(label))
    except (ValueError, OverflowError):
        return False


def is_class(label: Any, classes: Iterable[Any]) -> bool:
    """Whether ``label`` names one of ``classes`` (``1``, ``"1"``, ``1.0`` and ``true`` are
    class 1 alike, as ``regrow window --labelled`` reads them)."""
    if label is None or not isinstance(label, int | float | str):
        return False
    number = isinstance(label, bool) or is_number(label)
    for c in classes:
        if type(c) is type(label) and c == label:
            return True
        if isinstance(c, int | float) and number and float(c) == float(label):
            return True
        if isinstance(c, str) and str(label) == c:
            return True
    return False


def check_labels(catalog: Catalog, system: str, items: Sequence[tuple[Any, Any, Any]]) -> None:
    """Refuse (:class:`~regrow.errors.DataError`, naming request, row and label) the
    ``(request_id, row, label)`` items no version of ``system`` that may serve could compare
    (see the module docs). Malformed items (no triple, a label that is no string, number or
    boolean) and a system without versions are left to the store to name."""
    serving = _serving(catalog, system)
    versions = [v for v, _ in serving]
    if not versions:
        return
    regressors = [v for v in versions if v.spec.get("task") != "classification"]
    each = [classes_of(catalog, v) for v in versions if v not in regressors]
    classes: set[Any] = set().union(*each)
    classifiers_known = all(each)

    def takes(label: Any) -> bool:
        if regressors and is_number(label):
            return True
        if not classifiers_known:  # a classifier without recorded classes takes any value
            return label is not None
        return is_class(label, classes)

    triples = [(x[0], x[1], _plain(x[2])) for x in items if isinstance(x, tuple | list)
               and len(x) == 3]  # fmt: skip
    bad = [x for x in triples if isinstance(x[2], int | float | str) and not takes(x[2])]
    if not bad:
        return
    shown = "; ".join(f"request {r!r} row {n}: {label!r:.30}" for r, n, label in bad[:_SHOWN])
    wanted = [f"the classes {sorted(classes, key=str)}"] if classes else []
    wanted += ["a number"] if regressors else []
    refs = ", ".join(f"{v.ref} ({role})" for v, role in serving)
    raise DataError(
        f"{len(bad):,} label(s) of {system!r} cannot be compared with what the versions that "
        f"may serve it predict, {refs}: "
        f"{shown}{'; ...' if len(bad) > _SHOWN else ''}",
        hint=f"send {' or '.join(wanted) or 'labels'}; nothing of this call was stored",
    )


def _serving(catalog: Catalog, system: str) -> list[tuple[SystemVersionRecord, str]]:
    """The versions of ``system`` that may have served a row, each with why: its aliases'
    holders (``alias champion``), the candidates of its rollouts under way (``rollout
    candidate``), and its latest version (``latest``)."""
    roles: dict[str, list[str]] = {}
    for a in catalog.list_aliases(system):
        roles.setdefault(a.version_id, []).append(f"alias {a.name}")
    for r in catalog.rollouts.list(system=system, active=True):
        for c in r.candidates:
            roles.setdefault(c, []).append("rollout candidate")
    for v in catalog.list_system_versions(system)[:1]:
        roles.setdefault(v.id, []).append("latest")
    found = [(catalog.get_system_version(i), ", ".join(roles[i])) for i in roles]
    return sorted(found, key=lambda pair: pair[0].number)  # as their refs count: v1, v2


def _plain(value: Any) -> Any:
    """A numpy scalar as the Python value it holds (the store keeps it so)."""
    return value.item() if hasattr(value, "item") and not isinstance(value, str) else value
