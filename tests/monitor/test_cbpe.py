"""CBPE: on perfectly calibrated scores, the band covers the realised metric ~95% of the time."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from regrow.errors import ConfigError, DataError
from regrow.monitor.cbpe import CBPE, Support, expected_calibration_error, sampling_std


def _draw(rng: np.random.Generator, n: int, a: float = 2, b: float = 2) -> tuple[np.ndarray, ...]:
    p = rng.beta(a, b, n)
    return p, (rng.uniform(size=n) < p).astype(int)


def test_band_covers_the_realised_metric_in_about_95_percent_of_40_windows() -> None:
    rng = np.random.default_rng(0)
    cbpe = CBPE(seed=0).fit(*_draw(rng, 5000))
    assert cbpe.calibration_ is not None
    assert not cbpe.calibration_.calibrated
    covered = {"roc_auc": 0, "accuracy": 0}
    errors: dict[str, list[float]] = {"roc_auc": [], "accuracy": []}
    widths: dict[str, list[float]] = {"roc_auc": [], "accuracy": []}
    for _ in range(40):
        p, y = _draw(rng, 500, 2, 3)  # the score distribution shifts; P(y | score) does not
        result = cbpe.estimate(p)
        assert result.warnings == ()
        for metric, est in result.estimates.items():
            realised = roc_auc_score(y, p) if metric == "roc_auc" else np.mean((p >= 0.5) == y)
            covered[metric] += est.low <= realised <= est.high
            errors[metric].append(realised - est.value)
            widths[metric].append(est.sampling_error)
    for metric in covered:
        assert covered[metric] >= 34, (metric, covered[metric])
        # the stated sampling error matches the spread of the actual estimation errors
        ratio = np.mean(widths[metric]) / np.std(errors[metric])
        assert 0.7 < ratio < 1.6, (metric, ratio)
        assert abs(np.mean(errors[metric])) < 0.01


def test_miscalibrated_scores_are_recalibrated_and_still_estimated_well() -> None:
    rng = np.random.default_rng(1)
    p, y = _draw(rng, 5000)
    cbpe = CBPE(seed=0).fit(np.sqrt(p), y)  # over-confident in the positive class
    cal = cbpe.calibration_
    assert cal is not None
    assert cal.calibrated
    assert cal.ece_calibrated < cal.ece_raw
    checks = [
        cbpe.check_with_labels(np.sqrt(p_w), y_w)
        for p_w, y_w in (_draw(rng, 1000) for _ in range(10))
    ]
    assert sum(all(c.within_band.values()) for c in checks) >= 8
    assert sum(c.calibration_drift for c in checks) <= 2
    p_w, y_w = _draw(rng, 1000)
    raw = CBPE(calibration="never").fit(np.sqrt(p), y).estimate(np.sqrt(p_w))
    realised = np.mean((np.sqrt(p_w) >= 0.5) == y_w)
    assert raw.estimates["accuracy"].value > realised + 0.05  # over-confidence overstates it


def test_scores_and_features_outside_reference_support_raise_warnings() -> None:
    rng = np.random.default_rng(2)
    p, y = _draw(rng, 2000)
    inside = (p > 0.1) & (p < 0.9)
    ref = pd.DataFrame({"x": p[inside], "c": "a"})
    cbpe = CBPE().fit(p[inside], y[inside], features=ref)
    window = pd.DataFrame({"x": p[:500] + 0.5, "c": np.where(np.arange(500) < 100, "new", "a")})
    result = cbpe.estimate(rng.uniform(size=500), features=window)
    assert result.score_outside_support > 0.1
    assert result.outside_by_column["c"] == pytest.approx(0.2)
    assert len(result.warnings) == 2
    assert "outside the reference range" in result.warnings[0]
    assert "'x'" in result.warnings[1]
    assert json.loads(json.dumps(result.to_dict()))["warnings"] == list(result.warnings)


def test_check_with_labels_flags_calibration_drift_under_concept_shift() -> None:
    rng = np.random.default_rng(3)
    cbpe = CBPE().fit(*_draw(rng, 4000))
    p, _ = _draw(rng, 1000)
    y = (rng.uniform(size=1000) < p * 0.6).astype(int)  # positives became rarer at every score
    check = cbpe.check_with_labels(p, y)
    assert check.calibration_drift
    assert check.calibration_z < -3
    assert any("calibration drifted" in w for w in check.warnings)
    assert check.to_dict()["calibration_drift"] is True


def test_helpers_agree_with_direct_computations() -> None:
    rng = np.random.default_rng(4)
    p, y = _draw(rng, 3000)
    assert expected_calibration_error(p, y) < 0.05
    assert expected_calibration_error(np.full(3000, 0.9), y) == pytest.approx(0.9 - y.mean())
    se = sampling_std("roc_auc", y, p, 300, n_samples=300)
    direct = [roc_auc_score(y[i], p[i]) for i in rng.integers(0, 3000, (150, 300))]
    assert se == pytest.approx(np.std(direct), rel=0.2)
    support = Support.of(pd.DataFrame({"a": [0.0, 1.0], "b": ["x", "y"]}))
    share, by_col = support.outside(pd.DataFrame({"a": [0.5, 2.0, np.nan], "b": ["x", "x", "z"]}))
    assert share == pytest.approx(2 / 3)
    assert by_col == pytest.approx({"a": 1 / 3, "b": 1 / 3})


def test_bad_inputs_are_refused() -> None:
    rng = np.random.default_rng(5)
    p, y = _draw(rng, 200)
    with pytest.raises(ConfigError, match="not fitted"):
        CBPE().estimate(p)
    with pytest.raises(ConfigError, match="cannot estimate"):
        CBPE(metrics=("rmse",))
    with pytest.raises(DataError, match="multiclass"):
        CBPE().fit(rng.dirichlet([1, 1, 1], 200), y)
    with pytest.raises(DataError, match="0/1 labels"):
        CBPE().fit(p, y + 1)
    with pytest.raises(DataError, match="both classes"):
        CBPE().fit(p, np.zeros(200, int))
    cbpe = CBPE().fit(p, y)
    with pytest.raises(DataError, match="empty"):
        cbpe.estimate(np.array([]))
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        cbpe.estimate(p + 1)


# -- multiclass ---------------------------------------------------------------------------------


def _draw3(rng: np.random.Generator, n: int, alpha: tuple[float, ...] = (1, 1, 1)) -> tuple:
    p = rng.dirichlet(alpha, n)
    y = np.minimum((rng.uniform(size=n)[:, None] > p.cumsum(axis=1)).sum(axis=1), len(alpha) - 1)
    return p, y


def test_multiclass_band_covers_realised_accuracy_and_macro_auc_in_25_of_30_windows() -> None:
    rng = np.random.default_rng(10)
    cbpe = CBPE(seed=0).fit(*_draw3(rng, 4000))
    assert cbpe.classes_ == (0, 1, 2)
    assert cbpe.calibration_ is not None
    # "auto" calibrates every class of a multiclass model (as NannyML does), and the band
    # holds the calibration's own error: calibrated scores still get honest bands.
    assert cbpe.calibration_.calibrated
    covered = {"roc_auc": 0, "accuracy": 0}
    for _ in range(30):
        p, y = _draw3(rng, 500, (2, 1, 1))  # the score distribution shifts; P(y | p) does not
        result = cbpe.estimate(p)
        assert result.warnings == ()
        realised = {
            "roc_auc": roc_auc_score(y, p, multi_class="ovr", average="macro"),
            "accuracy": np.mean(p.argmax(axis=1) == y),
        }
        for metric, est in result.estimates.items():
            covered[metric] += est.low <= realised[metric] <= est.high
            assert abs(est.value - realised[metric]) < 5 * est.sampling_error
    assert min(covered.values()) >= 25, covered
    assert cbpe.reference_values_["accuracy"] == pytest.approx(0.6, abs=0.05)


def test_multiclass_miscalibrated_reference_is_calibrated_per_class() -> None:
    rng = np.random.default_rng(11)

    def sharpen(p: np.ndarray) -> np.ndarray:  # over-confident: probabilities squared, renormed
        return p**2 / (p**2).sum(axis=1, keepdims=True)

    p, y = _draw3(rng, 4000)
    labels = np.array(["cat", "cow", "dog"])
    cbpe = CBPE(seed=0).fit(sharpen(p), labels[y])
    cal = cbpe.calibration_
    assert cal is not None
    assert cal.calibrated
    assert cal.ece_calibrated < cal.ece_raw
    assert cal.brier_calibrated < cal.brier_raw
    assert set(cbpe.class_calibration_) == {"cat", "cow", "dog"}
    assert all(c.calibrated for c in cbpe.class_calibration_.values())
    q = cbpe.calibrated(sharpen(p[:100]))
    assert q.sum(axis=1) == pytest.approx(np.ones(100))
    checks = [
        cbpe.check_with_labels(sharpen(p_w), labels[y_w])
        for p_w, y_w in (_draw3(rng, 1000) for _ in range(10))
    ]
    assert sum(all(c.within_band.values()) for c in checks) >= 8
    assert sum(c.calibration_drift for c in checks) <= 2
    p_w, y_w = _draw3(rng, 1000)
    raw = CBPE(calibration="never").fit(sharpen(p), labels[y]).estimate(sharpen(p_w))
    assert raw.estimates["accuracy"].value > np.mean(p_w.argmax(axis=1) == y_w) + 0.05
    never = CBPE(calibration="never").fit(p, y)
    assert never.calibration_ is not None
    assert not never.calibration_.calibrated
    assert never.calibrated(p[:5]) is not None
    always = CBPE(calibration="always").fit(p, y).calibration_
    assert always is not None
    assert always.calibrated


def test_multiclass_check_with_labels_flags_the_drifted_class() -> None:
    rng = np.random.default_rng(12)
    p_ref, y_ref = _draw3(rng, 3000)
    cbpe = CBPE().fit(p_ref, np.array(["a", "b", "c"])[y_ref], classes=np.array(["a", "b", "c"]))
    assert cbpe.classes_ == ("a", "b", "c")
    p, _ = _draw3(rng, 1000)
    y = np.minimum((rng.uniform(size=1000)[:, None] > p.cumsum(axis=1)).sum(axis=1), 2)
    y[rng.uniform(size=1000) < 0.3] = 2  # class "c" became more common at every score
    check = cbpe.check_with_labels(p, np.array(["a", "b", "c"])[y])
    assert check.calibration_drift
    assert check.calibration_z > 3
    assert check.observed_positive_rate > check.expected_positive_rate + 0.1
    assert any("calibration drifted" in w and "'c'" in w for w in check.warnings)
    assert not check.within_band["accuracy"]
    assert json.loads(json.dumps(check.to_dict()))["calibration_drift"] is True
    # per-row expectations agree with the window estimate
    row = cbpe.expected_row_correct(p)
    assert row.mean() == pytest.approx(cbpe.estimate(p).estimates["accuracy"].value)
    loss = cbpe.expected_row_log_loss(p)
    assert loss.shape == (1000,)
    assert (loss > 0).all()


def test_multiclass_scores_outside_reference_support_warn() -> None:
    rng = np.random.default_rng(13)
    cbpe = CBPE().fit(*_draw3(rng, 2000, (5, 5, 5)))
    p, _ = _draw3(rng, 500, (0.3, 0.3, 0.3))  # far more extreme probabilities
    result = cbpe.estimate(p)
    assert result.score_outside_support > 0.2
    assert any("class probability outside" in w for w in result.warnings)


def test_multiclass_bad_inputs_are_refused() -> None:
    rng = np.random.default_rng(14)
    p, y = _draw3(rng, 300)
    with pytest.raises(DataError, match="one score column per class"):
        CBPE().fit(p, np.minimum(y, 1))
    with pytest.raises(DataError, match="every class"):
        CBPE().fit(p[:40], y[:40])
    with pytest.raises(DataError, match="every class"):
        CBPE().fit(p, np.where(y == 2, 1, y), classes=[0, 1, 2])
    with pytest.raises(DataError, match="sum to 1"):
        CBPE().fit(p * 0.5, y)
    with pytest.raises(ConfigError, match="multiclass"):
        CBPE().fit(p[:, 0], (y == 0).astype(int), classes=[0, 1])
    cbpe = CBPE().fit(p, y)
    with pytest.raises(DataError, match=r"\(n, 3\)"):
        cbpe.estimate(p[:, :2])
    with pytest.raises(DataError, match="not among the reference classes"):
        cbpe.check_with_labels(p, y + 1)
    with pytest.raises(DataError, match="expected 300 labels"):
        cbpe.check_with_labels(p, y[:10])
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        cbpe.estimate(np.full((5, 3), 1.2))
    # a binary refit forgets the classes
    b = CBPE().fit(p[:, 0], (y == 0).astype(int))
    assert b.classes_ is None
    assert b.class_calibration_ == {}
    two = np.column_stack([1 - p[:, 0], p[:, 0]])  # a binary (n, 2) matrix is its column 1
    assert b.estimate(two).estimates["accuracy"] == b.estimate(p[:, 0]).estimates["accuracy"]
    with pytest.raises(DataError, match="positive-class probability"):
        b.estimate(p)
