"""Monitoring: mergeable profiles, drift tests and the calibrated drift monitor, multivariate
drift, label-free performance estimates (CBPE, DLE), chunks, and the monitor of any model's
predictions.

The estimators, the multivariate checks and the external-model monitor load on first use
(they import scikit-learn), so ``import regrow.monitor`` stays light.

>>> import regrow.monitor as m
>>> all(hasattr(m, name) for name in m.__all__)
True
>>> m.Chunking(size=5000).describe()
'chunks of 5,000 rows'
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from regrow.monitor.calibration import Calibrator, benjamini_hochberg
from regrow.monitor.drift import DriftTest
from regrow.monitor.drift_monitor import DriftMonitor, DriftReport, FeatureDrift
from regrow.monitor.profile import ColumnProfile, Profile, merge

if TYPE_CHECKING:
    from regrow.monitor.cbpe import CBPE
    from regrow.monitor.chunks import Chunk, Chunking
    from regrow.monitor.dle import DLE
    from regrow.monitor.external import PredictionMonitorResult, monitor_predictions
    from regrow.monitor.multivariate import (
        MultivariateDrift,
        PCAReconstruction,
        multivariate_drift,
    )

__all__ = [
    "CBPE",
    "DLE",
    "Calibrator",
    "Chunk",
    "Chunking",
    "ColumnProfile",
    "DriftMonitor",
    "DriftReport",
    "DriftTest",
    "FeatureDrift",
    "MultivariateDrift",
    "PCAReconstruction",
    "PredictionMonitorResult",
    "Profile",
    "benjamini_hochberg",
    "merge",
    "monitor_predictions",
    "multivariate_drift",
]

_LAZY = {
    "CBPE": "regrow.monitor.cbpe",
    "DLE": "regrow.monitor.dle",
    "Chunk": "regrow.monitor.chunks",
    "Chunking": "regrow.monitor.chunks",
    "MultivariateDrift": "regrow.monitor.multivariate",
    "PCAReconstruction": "regrow.monitor.multivariate",
    "multivariate_drift": "regrow.monitor.multivariate",
    "PredictionMonitorResult": "regrow.monitor.external",
    "monitor_predictions": "regrow.monitor.external",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'regrow.monitor' has no attribute {name!r}")
