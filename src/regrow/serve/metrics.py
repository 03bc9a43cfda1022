"""Prometheus metrics of one app, on its own registry (``GET /metrics``).

=========================================  =========  =========================================
metric                                     type       labels
=========================================  =========  =========================================
``regrow_requests_total``                  counter    model, endpoint, code
``regrow_request_duration_seconds``        histogram  model, endpoint
``regrow_errors_total``                    counter    model, endpoint, code (every 4xx and 5xx)
``regrow_rows_total``                      counter    model, lane (rows scored)
``regrow_predictions_total``               counter    model, lane, system_version, member,
                                                      member_version (rows each member scored)
``regrow_batch_rows``                      histogram  model (rows per ``predict`` call)
``regrow_feedback_labels_total``           counter    model
``regrow_rollout_weight``                  gauge      model, lane (each lane's share of requests;
                                                      blend: ``blend``, the candidate's weight;
                                                      no rollout: 1.0 for ``main``)
``regrow_rollout_candidate_errors_total``  counter    model, lane (requests a rollout's candidate
                                                      failed to score: ``candidate``..., ``blend``
                                                      (answered by the stable version), ``shadow``)
``regrow_swaps_total``                     counter    model, alias, outcome (swapped, swapped_back,
                                                      refused, failed)
``regrow_served_version``                  gauge      model, alias, system_version (1: serving)
``regrow_prediction_log_rows``             gauge      state (logged, dropped, unwritable, pending)
=========================================  =========  =========================================

Every label value comes from a bounded set: models are the ones served (any other name is
``"unknown"``), endpoints and codes are the app's own, versions those loaded in this process.
Label children are cached, so counting a request costs a dictionary look-up.

>>> m = Metrics(["churn"])
>>> m.request("churn", "infer", 200, 0.002)
>>> m.request("not-a-model", "infer", 404, 0.001)
>>> text = m.render().decode()
>>> 'regrow_requests_total{code="404",endpoint="infer",model="unknown"} 1.0' in text
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["CONTENT_TYPE", "UNKNOWN", "Metrics"]

#: The content type of :meth:`Metrics.render`'s text.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: The model label of requests for a model this app does not serve.
UNKNOWN = "unknown"

_LATENCY = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
_ROWS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 1024, 4096, 16384)


class Metrics:
    """The app's metrics (see the module docs); ``models`` are the names served."""

    def __init__(self, models: Iterable[str]) -> None:
        self.models = frozenset(models)
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._requests = Counter(
            "regrow_requests", "HTTP requests answered.", ["model", "endpoint", "code"], registry=r
        )
        self._latency = Histogram(
            "regrow_request_duration_seconds",
            "Time from reading a request to its response, in seconds.",
            ["model", "endpoint"],
            buckets=_LATENCY,
            registry=r,
        )
        self._errors = Counter(
            "regrow_errors", "Requests answered with an error.", ["model", "endpoint", "code"],
            registry=r,
        )  # fmt: skip
        self._rows = Counter("regrow_rows", "Rows scored.", ["model", "lane"], registry=r)
        self._predictions = Counter(
            "regrow_predictions",
            "Rows scored, by system version and member version.",
            ["model", "lane", "system_version", "member", "member_version"],
            registry=r,
        )
        self._batch = Histogram(
            "regrow_batch_rows", "Rows per predict call.", ["model"], buckets=_ROWS, registry=r
        )
        self._feedback = Counter(
            "regrow_feedback_labels", "Feedback labels received.", ["model"], registry=r
        )
        self._weight = Gauge(
            "regrow_rollout_weight", "Share of traffic each lane gets.", ["model", "lane"],
            registry=r,
        )  # fmt: skip
        self._candidate_errors = Counter(
            "regrow_rollout_candidate_errors",
            "Requests a rollout's candidate failed to score, by lane.",
            ["model", "lane"],
            registry=r,
        )
        self._swaps = Counter(
            "regrow_swaps", "Hot swaps, by outcome.", ["model", "alias", "outcome"], registry=r
        )
        self._log_rows = Gauge(
            "regrow_prediction_log_rows",
            "Rows of the prediction log by state: logged (written), dropped (the queue was "
            "full), unwritable, pending (waiting to be written).",
            ["state"],
            registry=r,
        )
        self._served = Gauge(
            "regrow_served_version",
            "1 for the version an alias serves now.",
            ["model", "alias", "system_version"],
            registry=r,
        )
        self._children: dict[tuple[Any, ...], Any] = {}
        self._lanes: dict[str, frozenset[str]] = {}
        for model in self.models:
            self.rollout_weights(model, {"main": 1.0})

    def model(self, name: str) -> str:
        """``name`` if it is served here, else ``"unknown"`` (bounded label values)."""
        return name if name in self.models else UNKNOWN

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def request(self, model: str, endpoint: str, code: int, seconds: float) -> None:
        """Count one answered request (an error too, when ``code`` >= 400)."""
        name = self.model(model)
        status = str(code)
        self._child(self._requests, name, endpoint, status).inc()
        self._child(self._latency, name, endpoint).observe(seconds)
        if code >= 400:
            self._child(self._errors, name, endpoint, status).inc()

    def scored(
        self, model: str, lane: str, system_version: str, members: dict[str, str], rows: int
    ) -> None:
        """Count ``rows`` scored by ``system_version`` (and each member's version)."""
        name = self.model(model)
        self._child(self._rows, name, lane).inc(rows)
        for member, version in members.items():
            self._child(self._predictions, name, lane, system_version, member, version).inc(rows)

    def batch(self, model: str, rows: int) -> None:
        """Record the rows of one predict call."""
        self._child(self._batch, self.model(model)).observe(rows)

    def feedback(self, model: str, labels: int) -> None:
        """Count ``labels`` feedback labels received."""
        self._child(self._feedback, self.model(model)).inc(labels)

    def candidate_error(self, model: str, lane: str) -> None:
        """Count a request that a rollout's candidate failed to score in ``lane``.

        >>> m = Metrics(["churn"])
        >>> m.candidate_error("churn", "blend")
        >>> 'regrow_rollout_candidate_errors_total{lane="blend",model="churn"} 1.0' in (
        ...     m.render().decode())
        True
        """
        self._child(self._candidate_errors, self.model(model), lane).inc()

    def swap(self, model: str, alias: str, outcome: str) -> None:
        """Count a hot swap's ``outcome``."""
        self._child(self._swaps, self.model(model), alias, outcome).inc()

    def rollout_weights(self, model: str, weights: Mapping[str, float]) -> None:
        """Set ``model``'s lanes' weights (a lane set before and not named now goes to 0).

        >>> m = Metrics(["churn"])
        >>> m.rollout_weights("churn", {"main": 0.75, "candidate": 0.25})
        >>> m.rollout_weights("churn", {"main": 1.0})
        >>> 'regrow_rollout_weight{lane="candidate",model="churn"} 0.0' in m.render().decode()
        True
        """
        name = self.model(model)
        for lane in self._lanes.get(name, frozenset()) - weights.keys():
            self._child(self._weight, name, lane).set(0.0)
        for lane, weight in weights.items():
            self._child(self._weight, name, lane).set(float(weight))
        self._lanes[name] = self._lanes.get(name, frozenset()) | weights.keys()

    def serving(self, model: str, alias: str, system_version: str, before: str | None) -> None:
        """Mark ``system_version`` as what ``model@alias`` serves (and ``before`` not)."""
        name = self.model(model)
        if before is not None and before != system_version:
            self._child(self._served, name, alias, before).set(0)
        self._child(self._served, name, alias, system_version).set(1)

    def prediction_log(self, stats: Mapping[str, Any]) -> None:
        """Set the prediction log's row counts from :meth:`PredictionLog.stats
        <regrow.serve.predlog.PredictionLog.stats>` (called before each scrape)."""
        for state in ("logged", "dropped", "unwritable"):
            self._log_rows.labels(state).set(float(stats.get(f"rows_{state}", 0)))
        self._log_rows.labels("pending").set(float(stats.get("pending_rows", 0)))

    def render(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)
