"""The HTML report: built from the monitor result's JSON form only, self-contained, escaped,
deterministic, one plot per series, and written atomically."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from regrow.errors import ConfigError, DataError
from regrow.monitor.report_html import render_html, write_html

EVIL = "<script>alert(1)</script>"


def _rec(fields: str, *values: Any) -> dict[str, Any]:
    """A report row: ``fields`` are the keys, separated by spaces, in the order of ``values``."""
    return dict(zip(fields.split(), values, strict=True))


def _chunks(n: int, size: int = 1000) -> list[dict[str, Any]]:
    labels = (f"rows {i * size}-{(i + 1) * size - 1}" for i in range(n))
    return [_rec("label rows start end", label, size, None, None) for label in labels]


def _chunking(n: int, notes: list[str]) -> dict[str, Any]:
    fields = "size count period describe chunks notes"
    return _rec(fields, 1000, None, None, "chunks of 1,000 rows", _chunks(n), notes)


def _feature(column: str, drifted: bool, effect: float) -> dict[str, Any]:
    fields = (
        "column slice test statistic threshold p_value effect effect_interval drifted why "
        "adjusted_p_value error_bound"
    )
    why = f"{'drifted' if drifted else 'not drifted'}: {column} moved by {effect:.3f}"
    p = 0.001 if drifted else 0.6
    interval = [effect - 0.01, effect + 0.01]
    return _rec(fields, column, None, "wasserstein", effect, 0.04, p, effect, interval, drifted,
                why, 2 * p, 0.001)  # fmt: skip


def _drift_report(features: list[dict[str, Any]], chunk: str | None) -> dict[str, Any]:
    drifted = [f["column"] for f in features if f["drifted"]]
    fields = "rows fdr slices drifted_columns features chunk family"
    return _rec(fields, 1000, 0.05, [], drifted, features, chunk, len(features))


def _numeric() -> dict[str, Any]:
    edges = [float(e) for e in range(21)]
    return _rec(
        "kind edges reference window", "numeric", edges, [0.05] * 20, [0.1] * 10 + [0.0] * 10
    )


def _categorical() -> dict[str, Any]:
    return _rec("kind categories reference window", "categorical", ["a", "b", "other"],
                [0.5, 0.3, 0.2], [0.3, 0.3, 0.4])  # fmt: skip


def classification_report(columns: int = 4, chunks: int = 5) -> dict[str, Any]:
    """A system's classification result with every section: chunks, alerts, estimates with
    realised values, multivariate drift, drift, distributions and impacts. The second column
    is named like a script, drifts from the third chunk on and alerts in the last one."""
    names = ["f0", EVIL, *(f"f{i}" for i in range(2, columns))][:columns]
    labels = [c["label"] for c in _chunks(chunks)]
    last = labels[-1]
    fields = "chunk metric value low high reference realised alert"
    estimates = [
        _rec(fields, label, "roc_auc", 0.9 - 0.03 * i, 0.88 - 0.03 * i, 0.92 - 0.03 * i, 0.91,
             0.89 - 0.03 * i if i % 2 else None, label == last)
        for i, label in enumerate(labels)
    ] + [_rec(fields, None, "roc_auc", 0.85, 0.84, 0.86, 0.91, 0.84, False)]  # fmt: skip
    estimates += [{**r, "metric": "accuracy", "alert": False} for r in estimates]
    fields = "method chunk value low high threshold reference drifted rows why"
    multivariate = [
        _rec(fields, m, label, 0.5 + 0.01 * i, 0.49 + 0.01 * i, 0.51 + 0.01 * i, 0.55, 0.5,
             i == chunks - 1, 1000, f"{m} in {label}")
        for m in ("domain_classifier", "pca_reconstruction")
        for i, label in enumerate(labels)
    ]  # fmt: skip
    fields = "signal chunk value threshold direction why"
    alerts = [
        _rec(fields, "estimated roc_auc", last, 0.78, 0.8, "below",
             "estimated roc_auc 0.78 is below 0.80 (policy monitoring.alerts.roc_auc.min)"),
        _rec(fields, f"drift {EVIL}", None, 0.3, 0.05, "above",
             f"column {EVIL} drifted (effect 0.3 above the margin)"),
    ]  # fmt: skip
    fields = "component kind features loss_now loss_counterfactual impact interval candidate why"
    impacts = [
        _rec(fields, "A", "member", [EVIL], 0.5, 0.4, 0.1, [0.05, 0.15], True, "candidate"),
        _rec(fields, "B", "member", [], 0.4, 0.4, 0.0, [-0.01, 0.01], False,
             "not a candidate: the change is within noise"),
    ]  # fmt: skip
    fields = "column kind rows examples values readers blocked unusable why"
    finding = _rec(fields, "f0", "nulls", 3, [], [], ["A"], [], True, "3 nulls in f0")
    fields = "component kind scope group metric value low high n"
    labelled = _rec(fields, "A", "member", "all", "all", "roc_auc", 0.84, 0.82, 0.86, 5000)
    fields = "chunk calibration_drift calibration_z observed_positive_rate "
    fields += "expected_positive_rate ece warnings"
    rows = 1000 * chunks
    return {
        "summary": {
            "version": "churn@v3", "model": "churn@v3", "window": "snap-42", "rows": rows,
            "task": "classification", "drifted": [EVIL], "multivariate_drifted": True,
            "candidates": ["A"], "labelled": True, "alerts": len(alerts),
            "usable_rows": rows - 3, "findings": [],
        },
        "generated_at": "2026-11-29T12:00:00+00:00",
        "chunking": _chunking(chunks, ["the last chunk is full"]),
        "drift": [_drift_report([_feature(c, c == EVIL, 0.3 if c == EVIL else 0.01)
                                 for c in names], None)],
        "chunk_drift": [
            _drift_report([_feature(c, c == EVIL and i > 1, 0.01 + 0.1 * i * (c == EVIL))
                           for c in names], label)
            for i, label in enumerate(labels)
        ],
        "fdr": f"Benjamini-Hochberg at q=0.05 across {columns * chunks} tests",
        "multivariate": multivariate,
        "estimates": {"method": "cbpe", "reference_rows": 20000, "rows": estimates,
                      "warnings": ["scores were calibrated on 20,000 rows"]},
        "performance": {"system": "churn", "metric": "roc_auc", "higher_is_better": True,
                        "level": 0.95, "interval": "95% bootstrap", "n_rows": rows,
                        "n_unlabelled": 0, "rows": [labelled]},
        "calibration": _rec(fields, None, False, 0.4, 0.2, 0.21, 0.01, []),
        "alerts": alerts,
        "distributions": {c: _categorical() if i % 2 else _numeric() for i, c in enumerate(names)},
        "impacts": impacts,
        "quality": {"rows": rows, "usable_rows": rows - 3, "coerced": [], "findings": [finding],
                    "notes": ["3 of 5,000 rows are set aside"]},
        "timings": {"drift": 0.12, "estimates": 0.5},
    }  # fmt: skip


def regression_report() -> dict[str, Any]:
    """An external regression model: DLE estimates on the whole window, labelled performance
    per chunk, no chunk drift, no impacts."""
    fields = "chunk metric value low high reference realised alert"
    estimate = _rec(fields, None, "mae", 1.2, 1.1, 1.3, 1.0, 1.25, False)
    labelled = [_rec("chunk metric value low high", c["label"], "mae", 1.2, 1.0, 1.4)
                for c in _chunks(3)]  # fmt: skip
    x = _rec("kind edges reference window", "numeric", [0.0, 1.0, 2.0], [0.5, 0.5], [0.4, 0.6])
    return {
        "summary": {"version": None, "model": "prices (external)", "window": None, "rows": 3000,
                    "task": "regression", "drifted": [], "multivariate_drifted": False,
                    "labelled": True, "alerts": 0},
        "chunking": _chunking(3, []),
        "drift": [_drift_report([_feature("x", False, 0.01)], None)],
        "chunk_drift": [],
        "multivariate": [],
        "estimates": {"method": "dle", "reference_rows": 5000, "warnings": [], "rows": [estimate]},
        "performance": {"rows": labelled},
        "calibration": None,
        "alerts": [],
        "distributions": {"x": x},
        "quality": {"notes": []},
        "timings": {},
    }  # fmt: skip


def minimal_report() -> dict[str, Any]:
    """Only what every monitor result has: a summary and the whole window's drift."""
    return {
        "summary": {"model": "m", "rows": 10, "task": "regression"},
        "drift": [_drift_report([_feature("x", True, 0.2)], None)],
    }


class _Walk(HTMLParser):
    """Every start tag, the section each <svg> is in, and the text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.section: str | None = None
        self.svgs: dict[str | None, int] = {}
        self.text: list[str] = []
        self.depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "section":
            self.section = dict(attrs)["id"]
        if tag == "svg":
            self.svgs[self.section] = self.svgs.get(self.section, 0) + 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self.section = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _walk(page: str) -> _Walk:
    walk = _Walk()
    walk.feed(page)
    walk.close()
    return walk


@pytest.fixture(scope="module")
def full() -> tuple[dict[str, Any], str]:
    """The classification report and its page, rendered once for the tests that read it."""
    report = classification_report()
    return report, render_html(report)


def drift_only(columns: int, chunks: int) -> dict[str, Any]:
    """The drift and distribution parts of :func:`classification_report`."""
    report = classification_report(columns, chunks)
    keep = ("summary", "chunking", "drift", "chunk_drift", "distributions")
    return {k: v for k, v in report.items() if k in keep}


def test_a_full_report_has_one_plot_per_series_and_no_outside_reference(
    full: tuple[dict[str, Any], str],
) -> None:
    walk = _walk(full[1])
    assert walk.svgs == {
        "performance": 2,  # roc_auc and accuracy
        "multivariate": 2,  # domain_classifier and pca_reconstruction
        "drift": 5,  # the heatmap, then one per column (one test each)
        "distributions": 4,
        "attribution": 1,
    }
    for tag, attrs in walk.tags:
        assert tag not in ("script", "link", "iframe", "img", "object", "embed")
        for name in ("src", "href", "xlink:href"):
            assert not (attrs.get(name) or "").startswith(("http:", "https:", "//")), (tag, attrs)
    sections = [a["id"] for t, a in walk.tags if t == "section"]
    assert sections == [
        "alerts",
        "performance",
        "multivariate",
        "drift",
        "distributions",
        "attribution",
        "quality",
        "timings",
    ]


def test_plots_on_one_page_share_no_ids(full: tuple[dict[str, Any], str]) -> None:
    ids = [a["id"] for _, a in _walk(full[1]).tags if a.get("id")]
    assert ids
    assert len(ids) == len(set(ids))


def test_a_hostile_column_name_is_escaped_everywhere(full: tuple[dict[str, Any], str]) -> None:
    page = full[1]
    assert EVIL not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert not any(tag == "script" for tag, _ in _walk(page).tags)


def test_every_alert_shows_its_why_and_the_verdict_counts_them(
    full: tuple[dict[str, Any], str],
) -> None:
    report, page = full
    text = "".join(_walk(page).text)
    for alert in report["alerts"]:
        assert alert["why"] in text
    assert "2 alerts · 1 drifted column" in text
    assert "multivariate drift: yes · members to update: A" in text
    assert "2026-11-29T12:00:00+00:00" in text


def test_the_same_report_renders_the_same_page_also_after_a_json_round_trip(
    full: tuple[dict[str, Any], str],
) -> None:
    report, page = full
    assert render_html(json.loads(json.dumps(report))) == page


def test_a_regression_report_plots_its_estimate_and_tabulates_labelled_performance() -> None:
    walk = _walk(render_html(regression_report(), title="prices"))
    # DLE estimated the whole window only: one point; the labelled rows are in the table
    assert walk.svgs == {"performance": 1, "distributions": 1}
    text = "".join(walk.text)
    assert "Estimated without labels by DLE" in text
    assert "Labelled performance" in text
    assert "0 alerts · 0 drifted columns · multivariate drift: no" in text
    assert "prices" in text


def test_external_labelled_performance_without_estimates_is_plotted_over_chunks() -> None:
    report = regression_report()
    report["estimates"] = {"method": None, "rows": [], "warnings": []}
    page = render_html(report)
    assert _walk(page).svgs == {"performance": 1, "distributions": 1}
    assert "realised mae per chunk" in page


def test_a_minimal_report_has_the_header_and_the_drift_table_only() -> None:
    walk = _walk(render_html(minimal_report()))
    assert walk.svgs == {}
    assert [a["id"] for t, a in walk.tags if t == "section"] == ["drift"]
    text = "".join(walk.text)
    assert "drifted: x moved by 0.200" in text
    assert "1 drifted column (x)" in text


def test_columns_past_the_cap_are_in_the_heatmap_and_counted_drifted_first() -> None:
    page = render_html(drift_only(columns=6, chunks=3), max_columns=2)
    walk = _walk(page)
    assert walk.svgs == {"drift": 1 + 2, "distributions": 2}  # the heatmap shows all six
    text = "".join(walk.text)
    assert "4 more column × test series are in the heatmap only" in text
    assert "4 more columns not drawn" in text
    drift = page.split('<section id="drift">')[1].split("</section>")[0]
    first = drift.split("<figure")[2]  # after the heatmap
    assert "&lt;script&gt;alert(1)&lt;/script&gt; · wasserstein" in first
    distributions = page.split('<section id="distributions">')[1]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in distributions.split("<figure")[1]


def test_not_a_monitor_result_or_a_bad_cap_is_refused_with_a_hint() -> None:
    with pytest.raises(DataError, match="without a 'summary'"):
        render_html({"drift": []})
    with pytest.raises(ConfigError, match="'max_columns' parameter must be an int >= 0; got -1"):
        render_html(minimal_report(), max_columns=-1)


def test_write_html_writes_the_page_and_leaves_no_file_when_rendering_fails(
    tmp_path: Path,
) -> None:
    report = minimal_report()
    target = write_html(report, tmp_path / "out" / "report.html")
    assert target.read_text(encoding="utf-8") == render_html(report)
    beside = tmp_path / "plain.txt"
    beside.write_text("")
    assert target.stat().st_mode == beside.stat().st_mode  # the umask's, not mkstemp's 0600

    broken = {**minimal_report(), "distributions": drift_only(2, 2)["distributions"]}
    broken["distributions"]["f0"]["edges"] = [0.0, 1.0]  # 2 edges for 20 shares
    with pytest.raises(DataError, match="2 edges for 20 reference"):
        write_html(broken, tmp_path / "bad.html")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "plain.txt"]

    with pytest.raises(DataError):
        write_html(broken, target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]
    assert target.read_text(encoding="utf-8") == render_html(report)  # left untouched


def test_drift_rows_and_series_name_their_reference_when_members_have_two() -> None:
    report = minimal_report()
    report["drift"] = [
        {**_drift_report([_feature("x", False, 0.03)], None), "reference": "ref (account)"},
        {**_drift_report([_feature("x", True, 0.6)], None), "reference": "recent (geo)"},
    ]
    report["chunk_drift"] = [
        {**_drift_report([_feature("x", flag, effect)], chunk), "reference": name}
        for name, flag, effect in (("ref (account)", False, 0.03), ("recent (geo)", True, 0.6))
        for chunk in ("rows 0-999", "rows 1000-1999")
    ]  # fmt: skip
    page = render_html(report)
    table = page.split("<h3>Whole window</h3>")[1]
    assert ">reference<" in table
    assert table.index("recent (geo)") < table.index("ref (account)")  # drifted first
    assert "x (recent (geo)) · wasserstein" in page  # one series per reference, not mixed
    assert "x (ref (account)) · wasserstein" in page
    assert ">reference<" not in render_html(minimal_report())
