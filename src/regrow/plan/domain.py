"""The multivariate check the planner runs: can a classifier tell the window's rows from the
reference's?

Per-feature drift tests miss a shift in how features go together (a correlation that flips,
each marginal unchanged); a small boosted classifier on all the columns sees it. The planner
runs it only when no single feature drifted and nothing else escalated the plan already: only
then can its answer change the plan (``escalation.unexplained_multivariate``).

The check itself lives in :mod:`regrow.monitor.multivariate` (with the monitor's calibrated
form, :func:`~regrow.monitor.multivariate.domain_classifier`); this module keeps the planner's
names.
"""

from __future__ import annotations

from regrow.monitor.multivariate import DomainCheck, domain_check

__all__ = ["DomainCheck", "domain_check"]
