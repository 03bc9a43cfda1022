"""Monitoring: mergeable profiles, drift tests and the calibrated drift monitor.

>>> import regrow.monitor as m
>>> m.__all__ == sorted(m.__all__)
True
"""

from regrow.monitor.calibration import Calibrator, benjamini_hochberg
from regrow.monitor.drift import DriftTest
from regrow.monitor.drift_monitor import DriftMonitor, DriftReport, FeatureDrift
from regrow.monitor.profile import ColumnProfile, Profile, merge

__all__ = [
    "Calibrator",
    "ColumnProfile",
    "DriftMonitor",
    "DriftReport",
    "DriftTest",
    "FeatureDrift",
    "Profile",
    "benjamini_hochberg",
    "merge",
]
