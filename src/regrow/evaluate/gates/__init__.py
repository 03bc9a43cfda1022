"""Gates: pluggable checks that turn an evaluation into a verdict.

Each gate reads a :class:`GateContext` (both versions, the evaluation rows and their scores,
slices, profiles, the paired bootstrap resamples) and returns a :class:`GateResult`: the
measured value, its interval, the threshold, ``pass`` / ``fail`` / ``inconclusive`` and a
sentence of why. :func:`verdict` blesses only when every gate passed.

===================  ======================================  =================================
gate                 checks                                  module
===================  ======================================  =================================
``improvement``      the metric's improvement interval       :mod:`~.performance`
``slice_regression`` no slice worse by more than ``max``     :mod:`~.performance`
``stability``        no worse on the reference period        :mod:`~.performance`
``fairness``         parity / equalized odds differences     :mod:`~.fairness`
``data_quality``     snapshots against the reference         :mod:`~.data_quality`
``calibration``      expected calibration error              :mod:`~.calibration`
``latency``          predict seconds per 1,000 rows          :mod:`~.serving`
``size``             artifact bytes                          :mod:`~.serving`
``coverage``         every feature has a reference profile   :mod:`~.coverage`
``signature``        inputs and outputs match the baseline   :mod:`~.signature`
===================  ======================================  =================================

The gates that judge a bootstrap interval (improvement, slice_regression, stability,
fairness, calibration: :class:`IntervalGate`) are inconclusive on fewer than ``min_rows`` rows
(default :data:`MIN_ROWS`, 30), and so is each slice or group that small: an evaluation on a
handful of rows never blesses. A project registers its own with :func:`register` (see
:mod:`~.registry`).

>>> import regrow.evaluate.gates as g
>>> g.gate_names()[:3]
['calibration', 'coverage', 'data_quality']
"""

from regrow.evaluate.gates.base import (
    MIN_ROWS,
    STATUSES,
    BaseGate,
    Gate,
    GateResult,
    IntervalGate,
    Status,
)
from regrow.evaluate.gates.calibration import Calibration
from regrow.evaluate.gates.context import GateContext, HeldOut, scores_of
from regrow.evaluate.gates.coverage import Coverage
from regrow.evaluate.gates.data_quality import DataQuality
from regrow.evaluate.gates.fairness import Fairness
from regrow.evaluate.gates.performance import Improvement, SliceRegression, Stability
from regrow.evaluate.gates.registry import (
    build,
    gate_names,
    get_gate,
    register,
    validate_checks,
)
from regrow.evaluate.gates.serving import Latency, Size
from regrow.evaluate.gates.signature import Signature
from regrow.evaluate.gates.verdict import INCONCLUSIVE, Inconclusive, verdict

__all__ = [
    "INCONCLUSIVE",
    "MIN_ROWS",
    "STATUSES",
    "BaseGate",
    "Calibration",
    "Coverage",
    "DataQuality",
    "Fairness",
    "Gate",
    "GateContext",
    "GateResult",
    "HeldOut",
    "Improvement",
    "Inconclusive",
    "IntervalGate",
    "Latency",
    "Signature",
    "Size",
    "SliceRegression",
    "Stability",
    "Status",
    "build",
    "gate_names",
    "get_gate",
    "register",
    "scores_of",
    "validate_checks",
    "verdict",
]

for _gate in (
    Improvement, SliceRegression, Stability, Fairness, DataQuality, Calibration, Latency, Size,
    Coverage, Signature,
):  # fmt: skip
    register(_gate)
