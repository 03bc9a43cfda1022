"""Performance forecasts: the crossing probability, its edge cases, and the expected metric
after an update (regrow.forecast.trend, regrow.forecast.updates)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from regrow.errors import ConfigError
from regrow.forecast import Forecast, MetricPoint, expected_after_update, forecast, metric_bounds

START = datetime(2026, 1, 1, tzinfo=UTC)


def noisy(values: list[float], sd: float = 0.008, seed: int = 0) -> list[MetricPoint]:
    """Points read with noise ``sd`` and a band that says so (95 %)."""
    rng = np.random.default_rng(seed)
    out = []
    for i, v in enumerate(values):
        y = float(v + rng.normal(0, sd))
        out.append(
            MetricPoint(
                START + timedelta(days=i), y, y - 1.96 * sd, y + 1.96 * sd, "realised", 3000
            )
        )
    return out


def below(points: list[MetricPoint] | list[float], threshold: float = 0.8, **kw: int) -> Forecast:
    return forecast(points, threshold=threshold, direction="below", horizon=kw.pop("horizon", 7))


def test_a_degrading_series_is_likely_to_cross() -> None:
    f = below(noisy([0.87 - 0.005 * i for i in range(20)]))
    assert f.probability is not None
    assert f.probability > 0.9
    assert f.expected is not None
    assert f.expected < 0.8
    assert f.steps_to_cross is not None
    assert 1 <= f.steps_to_cross <= 7
    assert f.lower is not None
    assert f.upper is not None
    assert f.lower < f.expected < f.upper


def test_a_stable_series_far_from_the_threshold_is_unlikely_to_cross() -> None:
    f = below(noisy([0.88] * 20))
    assert f.probability is not None
    assert f.probability < 0.02
    assert f.steps_to_cross is None
    assert f.expected == pytest.approx(0.88, abs=0.01)


def test_the_probability_grows_with_the_threshold_and_the_horizon() -> None:
    points = noisy([0.86 - 0.002 * i for i in range(15)])
    probs = [
        below(points, threshold).probability for threshold in np.linspace(0.78, 0.86, 9).tolist()
    ]
    assert all(p is not None for p in probs)
    assert probs == sorted(probs)  # type: ignore[type-var]
    assert probs[0] < 0.2 < 0.8 < probs[-1]  # type: ignore[operator]
    short, long = (below(points, 0.82, horizon=h).probability for h in (2, 12))
    assert short is not None
    assert long is not None
    assert short < long


def test_error_metrics_cross_above() -> None:
    rising = noisy([2.0 + 0.05 * i for i in range(15)], sd=0.02)
    f = forecast(rising, threshold=3.0, direction="above", horizon=10)
    assert f.probability is not None
    assert f.probability > 0.8
    flat = forecast(noisy([2.0] * 15, sd=0.02), threshold=3.0, direction="above", horizon=10)
    assert flat.probability is not None
    assert flat.probability < 0.02


@pytest.mark.parametrize("values", [[], [0.85], [0.85, 0.84], [math.nan] * 5, [0.8, math.nan, 0.8]])
def test_too_few_points_give_a_forecast_that_says_so(values: list[float]) -> None:
    f = below(values)
    assert not f.ok
    assert f.probability is None
    assert f.expected is None
    assert f.notes[-1] == f"too few points: {f.n_points} (need 3)"
    assert f.to_dict()["notes"] == list(f.notes)


def test_missing_values_are_skipped() -> None:
    values = [0.87 - 0.005 * i for i in range(20)]
    points = noisy(values)
    holes = [
        MetricPoint(p.at, math.nan, None, None, p.source, 0) if i in (3, 11) else p
        for i, p in enumerate(points)
    ]
    f = below(holes)
    assert f.n_points == 18
    assert "2 of 20 points have no value: skipped" in f.notes
    assert f.probability is not None
    assert f.probability > 0.9


def test_a_constant_series_forecasts_itself() -> None:
    high, low = below([0.85] * 10), below([0.75] * 10)
    assert high.probability == 0.0
    assert high.expected == pytest.approx(0.85)
    assert low.probability == 1.0
    assert low.expected == pytest.approx(0.75)
    assert "the metric is already below 0.8 (0.75)" in low.notes


def test_a_single_drop_raises_the_probability_less_when_its_band_is_wide() -> None:
    steady = noisy([0.85] * 15, seed=1)
    last = steady[-1]
    tight = [*steady[:-1], MetricPoint(last.at, 0.81, 0.80, 0.82, "estimated", 3000)]
    wide = [*steady[:-1], MetricPoint(last.at, 0.81, 0.71, 0.91, "estimated", 300)]
    p_steady, p_tight, p_wide = (below(s).probability for s in (steady, tight, wide))
    assert p_steady is not None
    assert p_tight is not None
    assert p_wide is not None
    assert p_steady < p_wide < p_tight
    assert below(tight).expected < below(steady).expected  # type: ignore[operator]


def test_points_without_bands_borrow_them_and_plain_numbers_estimate_the_noise() -> None:
    points = noisy([0.87 - 0.005 * i for i in range(20)])
    mixed = [
        MetricPoint(p.at, p.value, None, None, p.source, p.rows) if i % 3 else p
        for i, p in enumerate(points)
    ]
    f = below(mixed)
    assert "points without a band take the median band of the others" in f.notes
    assert f.probability is not None
    assert f.probability > 0.9
    plain = below([p.value for p in points])
    assert "no point states a band: the noise is estimated from the series" in plain.notes
    assert plain.probability is not None
    assert plain.probability > 0.9


def test_the_same_seed_gives_the_same_forecast() -> None:
    points = noisy([0.85 - 0.002 * i for i in range(12)])
    one = forecast(points, threshold=0.82, direction="below", horizon=5, seed=3)
    assert one == forecast(points, threshold=0.82, direction="below", horizon=5, seed=3)
    assert one.n_points == 12
    assert one.method
    assert one.horizon == 5


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"direction": "sideways"}, "'direction' parameter must be 'below' or 'above'"),
        ({"horizon": 0}, "'horizon' parameter must be a whole number of windows >= 1"),
        ({"horizon": 2.5}, "'horizon' parameter"),
        ({"threshold": math.nan}, "'threshold' parameter must be a finite number"),
        ({"level": 1.0}, "'level' parameter must be in"),
    ],
)
def test_bad_parameters_are_refused_with_a_hint(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"threshold": 0.8, "direction": "below", "horizon": 3, **kwargs}
    with pytest.raises(ConfigError, match=match) as info:
        forecast([0.8, 0.81, 0.82], **args)  # type: ignore[arg-type]
    assert info.value.hint
    if "horizon" in kwargs:  # the CLI's spelling too (it hinted horizon=7 to a CLI user)
        assert "--horizon 7" in info.value.hint


def test_without_history_the_planner_is_taken_at_its_word() -> None:
    out = expected_after_update(0.78, 0.02, 0.05)
    assert out["factor"] == 1.0
    assert out["history_used"] == 0
    assert out["partial"] == pytest.approx(0.80)
    assert out["full"] == pytest.approx(0.83)
    assert expected_after_update(0.78, None, 0.05)["partial"] is None


def test_past_updates_shrink_the_gains_and_the_factor_is_clipped() -> None:
    half = expected_after_update(0.78, 0.04, 0.08, history=[(0.02, 0.01)] * 9)
    assert half["factor"] == pytest.approx((9 * 0.5 + 1) / 10)  # nine updates and the prior
    assert half["partial"] == pytest.approx(0.78 + half["factor"] * 0.04)
    better = expected_after_update(0.78, 0.04, None, history=[(0.01, 0.05)] * 5)
    assert better["factor"] == 1.5
    worse = expected_after_update(0.78, 0.04, None, history=[(0.02, -0.03)] * 5)
    assert worse["factor"] == 0.0
    assert worse["partial"] == pytest.approx(0.78)
    # Error metrics gain by falling: the ratio is sign-safe.
    rmse = expected_after_update(3.0, -0.4, None, history=[(-0.2, -0.1)] * 9)
    assert rmse["factor"] == pytest.approx(0.55)
    assert rmse["partial"] == pytest.approx(2.78)


def test_uninformative_history_is_left_out_and_bad_history_is_refused() -> None:
    out = expected_after_update(0.8, 0.01, 0.02, history=[(0.0, 0.01), (math.nan, 0.1)])
    assert out["history_used"] == 0
    assert out["factor"] == 1.0
    with pytest.raises(ConfigError, match="history entry 0 must be a pair"):
        expected_after_update(0.8, 0.01, 0.02, history=[(0.01,)])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="'current' parameter must be a finite number"):
        expected_after_update(math.nan, 0.01, 0.02)


def test_bounds_keep_the_forecast_inside_the_metrics_range() -> None:
    falling = [0.3, 0.2, 0.12, 0.05, 0.02]
    free = forecast(falling, threshold=0.5, direction="below", horizon=10)
    assert free.lower is not None
    assert free.lower < 0
    bounded = forecast(
        falling, threshold=0.5, direction="below", horizon=10, bounds=metric_bounds("roc_auc")
    )
    assert bounded.lower is not None
    assert bounded.expected is not None
    assert 0.0 <= bounded.lower <= bounded.expected <= bounded.upper <= 1.0  # type: ignore[operator]
    assert bounded.probability == free.probability  # the threshold lies inside the range
    assert metric_bounds("rmse") == (0.0, math.inf)
    assert metric_bounds("business_value") is None
    with pytest.raises(ConfigError, match="bounds must be"):
        forecast(falling, threshold=0.5, direction="below", horizon=3, bounds=(1.0, 0.0))


def test_points_measured_on_a_handful_of_rows_are_skipped_and_said() -> None:
    # A realised AUC on 3 rows, with a narrow bootstrap band, would pull the filter to it.
    start = datetime(2026, 1, 1, tzinfo=UTC)
    steady = [
        MetricPoint(start + timedelta(days=i), 0.86, 0.85, 0.87, "realised", 4000)
        for i in range(10)
    ]
    tiny = MetricPoint(start + timedelta(days=10), 0.40, 0.39, 0.41, "realised", 3)
    with_tiny = forecast([*steady, tiny], threshold=0.8, direction="below", horizon=5)
    without = forecast(steady, threshold=0.8, direction="below", horizon=5)
    assert with_tiny.n_points == 10
    assert with_tiny.probability == without.probability
    assert with_tiny.notes[0] == "1 point(s) measured on fewer than 30 rows: skipped"


def trial(values: list[float], versions: list[str], half: list[float]) -> list[MetricPoint]:
    return [
        MetricPoint(START + timedelta(days=7 * i), v, v - h, v + h, "realised", 2500, ver)
        for i, (v, ver, h) in enumerate(zip(values, versions, half, strict=True))
    ]


# A user trial's series: v1 at 0.65, then v2 (promoted) at 0.86, 0.93, 0.84 (a wide band). The
# promotion's step was read as a trend of +0.1 a window: the filtered metric sat at 0.96, above
# every reading, and the trend clipped at 1 gave P(< 0.95) = 0.29 and "expected 1".
TRIAL = trial([0.653, 0.861, 0.927, 0.838], ["v1", "v2", "v2", "v2"], [0.027, 0.014, 0.016, 0.097])


def test_a_new_version_starts_the_series_again_and_readings_past_the_sla_are_crossed() -> None:
    f = forecast(TRIAL, threshold=0.95, direction="below", horizon=14, bounds=(0.0, 1.0))
    assert f.last is not None
    assert 0.838 <= f.last <= 0.927  # inside what the new version's readings support
    assert f.crossed
    assert f.to_dict()["crossed"] is True
    assert f"the metric is already below 0.95 ({f.last:.4g})" in f.notes
    assert "the newest 3 reading(s) are below 0.95" in f.notes
    restart = "the level and the trend start again at each, 3 point(s) of the newest version"
    assert f"1 version change(s): {restart}" in f.notes
    assert f.probability is not None
    assert f.probability > 0.9
    assert f.expected is not None
    assert f.expected < 0.95


def test_a_trend_needs_enough_points_of_one_version() -> None:
    # Four readings climbing by 0.03: a slope fitted on them ran the forecast into the bound.
    rising = trial([0.86, 0.89, 0.92, 0.95], ["v2"] * 4, [0.01] * 4)
    f = forecast(rising, threshold=0.8, direction="below", horizon=14, bounds=(0.0, 1.0))
    assert "level only: a trend needs 9 points of one version, the series has 4" in f.notes
    assert f.method.startswith("local level")
    assert f.expected is not None
    assert f.last is not None
    assert 0.86 <= f.last <= 0.95
    assert f.expected < 0.96
    assert not f.crossed
    long = forecast(noisy([0.86] * 9), threshold=0.8, direction="below", horizon=3)
    assert long.method.startswith("local linear trend")  # nine points: the trend is fitted


def test_a_bounded_forecast_is_the_mean_of_paths_inside_the_range_not_a_clipped_bound() -> None:
    rising = noisy([0.9 + 0.01 * i for i in range(12)], sd=0.004)
    f = forecast(rising, threshold=0.8, direction="below", horizon=14, bounds=(0.0, 1.0))
    assert f.expected is not None
    assert f.upper is not None
    assert 0.95 < f.expected < 1.0  # heading for the bound, but the mean of bounded paths
    assert f.expected <= f.upper <= 1.0


def test_readings_past_the_threshold_are_said_while_the_filtered_metric_is_not() -> None:
    steady = noisy([0.86] * 12, seed=2)
    last = steady[-1]
    dip = [*steady[:-1], MetricPoint(last.at, 0.79, 0.70, 0.88, "estimated", 3000)]
    f = below(dip)
    assert f.last is not None
    assert not f.crossed
    said = f"the newest 1 reading(s) are below 0.8; the filtered metric ({f.last:.4g}) is not yet"
    assert said in f.notes


def test_a_promotions_step_is_not_read_as_the_metrics_own_noise_or_trend() -> None:
    plain = noisy([0.70] * 12 + [0.90] * 9, sd=0.006, seed=4)
    promoted = [
        MetricPoint(p.at, p.value, p.lower, p.upper, p.source, p.rows, "v1" if i < 12 else "v2")
        for i, p in enumerate(plain)
    ]
    step, restarted = (
        forecast(s, threshold=0.88, direction="below", horizon=7, bounds=(0.0, 1.0))
        for s in (plain, promoted)
    )
    assert restarted.probability is not None
    assert step.probability is not None
    assert restarted.probability < 0.1 < 0.3 < step.probability  # the step read as noise
    assert restarted.method.startswith("local linear trend")  # nine points of v2
