"""Drift tests: one module per test, the contract in :mod:`.base`, the choice in :mod:`.registry`.

>>> from regrow.monitor.drift import TESTS
>>> TESTS["wasserstein"].kinds
frozenset({'numeric'})
"""

from regrow.monitor.drift.base import Binned, BinnedTest, DriftTest, NumericGrid, bin_current
from regrow.monitor.drift.chi_square import ChiSquare
from regrow.monitor.drift.jensen_shannon import JensenShannon
from regrow.monitor.drift.ks import KS
from regrow.monitor.drift.psi import PSI
from regrow.monitor.drift.registry import TESTS, choose, get, register
from regrow.monitor.drift.unseen import Unseen
from regrow.monitor.drift.wasserstein import Wasserstein

__all__ = [
    "KS",
    "PSI",
    "TESTS",
    "Binned",
    "BinnedTest",
    "ChiSquare",
    "DriftTest",
    "JensenShannon",
    "NumericGrid",
    "Unseen",
    "Wasserstein",
    "bin_current",
    "choose",
    "get",
    "register",
]
