"""Performance forecasts: where a system's metric is heading, and what an update would bring.

Each monitored window leaves a value of the system's metric in the catalog: realised when the
window had labels, estimated (CBPE, DLE) with a band when it had none. In time order they are
a series, per system, member and slice, and the series has a trend:

=====================================  ===================================================
:func:`series_from_catalog`            the series, read from the stored monitor reports
                                       (:mod:`regrow.forecast.points`)
:func:`forecast`                       the probability that the metric crosses a threshold
                                       within a horizon, and the metric expected there
                                       (:mod:`regrow.forecast.trend`)
:func:`expected_after_update`          the metric expected after a partial or a full update,
                                       the planner's gains shrunk by past updates
                                       (:mod:`regrow.forecast.updates`)
=====================================  ===================================================

>>> f = forecast([0.88, 0.879, 0.881, 0.88, 0.878], threshold=0.8, direction="below", horizon=3)
>>> f.probability < 0.05
True

docs/forecast.md describes the model and its calibration (``benchmarks/forecast_calibration.py``).
"""

from regrow.forecast.points import MetricPoint, series_from_catalog
from regrow.forecast.trend import Forecast, forecast, metric_bounds
from regrow.forecast.updates import expected_after_update

__all__ = [
    "Forecast",
    "MetricPoint",
    "expected_after_update",
    "forecast",
    "metric_bounds",
    "series_from_catalog",
]
