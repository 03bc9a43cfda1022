"""The drift tests by name, and the automatic choice of test per column.

The rule (after Evidently's defaults), with ``n`` the window's non-null values in the column:

============  =====================  ======================================================
kind          ``n <= 1000``          ``n > 1000``
============  =====================  ======================================================
numeric       ``ks``                 ``wasserstein`` (in reference standard deviations)
categorical   ``chi_square``         ``jensen_shannon``
============  =====================  ======================================================

Small windows get the classic tests, whose power is good there; large windows get distances,
whose value does not grow with ``n``, so the practically-irrelevant margin stays meaningful.
Categorical columns whose reference counted every value also get ``unseen`` (the share of
values never seen in the reference) as a signal of its own. Any column's choice can be
overridden by name (``overrides={"age": "psi"}``); :func:`register` adds a test.

>>> choose("numeric", 200).name, choose("numeric", 200_000).name
('ks', 'wasserstein')
>>> choose("categorical", 50_000, override="chi_square").name
'chi_square'
>>> sorted(TESTS)
['chi_square', 'jensen_shannon', 'ks', 'psi', 'unseen', 'wasserstein']
"""

from __future__ import annotations

from regrow.errors import ConfigError
from regrow.monitor.drift.base import DriftTest
from regrow.monitor.drift.chi_square import ChiSquare
from regrow.monitor.drift.jensen_shannon import JensenShannon
from regrow.monitor.drift.ks import KS
from regrow.monitor.drift.psi import PSI
from regrow.monitor.drift.unseen import Unseen
from regrow.monitor.drift.wasserstein import Wasserstein
from regrow.monitor.profile import Kind

__all__ = ["SMALL_WINDOW", "TESTS", "choose", "get", "register"]

SMALL_WINDOW = 1000
"""Windows with at most this many values in a column count as small."""

TESTS: dict[str, DriftTest] = {
    t.name: t for t in (ChiSquare(), JensenShannon(), KS(), PSI(), Unseen(), Wasserstein())
}
_AUTO: dict[str, tuple[str, str]] = {
    "numeric": ("ks", "wasserstein"),
    "categorical": ("chi_square", "jensen_shannon"),
}


def register(test: DriftTest) -> None:
    """Make ``test`` available by its name (replacing a test of the same name)."""
    TESTS[test.name] = test


def get(name: str) -> DriftTest:
    """The test called ``name``."""
    try:
        return TESTS[name]
    except KeyError:
        raise ConfigError(
            f"unknown drift test {name!r}", hint=f"pick one of {', '.join(sorted(TESTS))}"
        ) from None


def choose(kind: Kind, n: int, *, override: str | None = None, column: str = "") -> DriftTest:
    """The test for a column of ``kind`` with ``n`` current values (see the module docstring)."""
    if override is not None:
        test = get(override)
        if kind not in test.kinds:
            raise ConfigError(
                f"drift test {override!r} does not apply to {kind} column {column!r}",
                hint=f"it applies to {', '.join(sorted(test.kinds))} columns",
            )
        return test
    if kind not in _AUTO:
        raise ConfigError(f"no drift test applies to {kind} column {column!r}")
    small, large = _AUTO[kind]
    return get(small if n <= SMALL_WINDOW else large)
