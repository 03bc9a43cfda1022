"""The dashboard in headless Chromium (Debian's ``chromium``, driven by Playwright's sync API;
never ``playwright install``), against a real uvicorn server on a copy of the demo's workspace.

Every page loads with no console error; the drift drill-down shows the drifted feature; a
rollout button is refused without the operator role and moves the rollout with it. Each page's
screenshot is saved under ``$REGROW_UI_ARTIFACTS`` (default: the test's temporary folder), and
its load time (navigation start to the load event, plots included) is printed, not asserted.

Without ``/usr/bin/chromium`` or Playwright the tests are skipped on a laptop, and fail when
``CI`` is set: CI must run them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _missing() -> str | None:
    if not CHROMIUM.is_file():
        return f"no browser at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install playwright; no `playwright install`)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module (skips, or fails in CI, without one)."""
    missing = _missing()
    if missing is not None:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}; CI must run the dashboard's browser tests")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def server(demo: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``regrow ui``'s app on a free port, over a copy of the demo's workspace."""
    from regrow.serve.local import running
    from regrow.ui import create_ui_app

    home = tmp_path_factory.mktemp("browser") / "demo"
    shutil.copytree(demo.home, home)
    with running(create_ui_app(home)) as url:
        yield url


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the screenshots go: ``$REGROW_UI_ARTIFACTS``, else a temporary folder."""
    given = os.environ.get("REGROW_UI_ARTIFACTS")
    folder = Path(given) if given else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _open(browser: Any, url: str) -> tuple[Any, list[str]]:
    """A page at ``url`` and the console errors (and page errors) it logs."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url, wait_until="load")  # the plots are images: the load event waits for them
    return page, errors


def test_every_page_loads_without_console_errors(
    browser: Any, server: str, demo: Any, artifacts: Path
) -> None:
    pages = {
        "overview": "/ui",
        "system": "/ui/versions/churn:v2",
        "monitoring": f"/ui/monitoring/churn?report={demo.drifted_report}",
        "feature": f"/ui/monitoring/churn/features/distance_km?report={demo.drifted_report}",
        "plans": "/ui/plans",
        "plan": f"/ui/plans/{demo.plan}",
        "run": f"/ui/runs/{demo.run}",
        "rollouts": "/ui/rollouts",
        "rollout": f"/ui/rollouts/{demo.rollout}",
        "governance": "/ui/governance",
        "lineage": "/ui/lineage/churn:v2",
        "audit": "/ui/audit",
    }
    timings = {}
    for name, path in pages.items():
        for visit in ("first", "again"):  # plots are drawn on the first visit, then cached
            page, errors = _open(browser, server + path)
            assert errors == [], (name, errors)
            ms = page.evaluate(
                "() => { const n = performance.getEntriesByType('navigation')[0];"
                " return [n.domContentLoadedEventEnd, n.loadEventEnd]; }"
            )
            timings[f"{name} ({visit})"] = ms
            broken = page.evaluate(
                "() => [...document.images].filter(i => !i.complete || !i.naturalWidth)"
                ".map(i => i.src)"
            )
            assert broken == [], (name, broken)
            if visit == "first":
                page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
            page.close()
    print(f"\nscreenshots in {artifacts}")
    for name, (ready, loaded) in timings.items():
        print(f"{name:22} DOM ready {ready:7.0f} ms, loaded {loaded:7.0f} ms")


def test_the_drift_drill_down_shows_the_drifted_feature(
    browser: Any, server: str, demo: Any
) -> None:
    page, errors = _open(browser, f"{server}/ui")
    page.click(f"a[href='/ui/monitoring/churn?report={demo.drifted_report}']")
    page.wait_for_load_state("load")
    assert "distance_km" in page.inner_text("#verdict")
    page.click("table.features a:text-is('distance_km')")
    page.wait_for_load_state("load")
    assert "distance_km drifted" in page.inner_text("#verdict")
    image = page.locator("img[alt='distance_km distributions']")
    assert image.evaluate("i => i.naturalWidth") > 0
    assert errors == []
    page.close()


def test_a_rollout_button_is_refused_without_the_role_and_moves_it_with_it(
    browser: Any, server: str, demo: Any
) -> None:
    page, _ = _open(browser, f"{server}/ui/rollouts/{demo.rollout}")
    assert page.inner_text("#rollout-state") == "progressing"
    page.fill("input[name=token]", demo.viewer)
    page.click("button[data-action=pause]")
    message = page.locator("#rollout-message")
    message.filter(has_text="refused").wait_for()
    assert "403" in message.inner_text()
    assert "may not pause a rollout" in message.inner_text()
    assert page.inner_text("#rollout-state") == "progressing"
    page.fill("input[name=token]", demo.operator)
    page.fill("input[name=reason]", "checking the canary by hand")
    with page.expect_navigation():  # the page reloads after a move
        page.click("button[data-action=pause]")
    page.wait_for_load_state("load")
    assert page.inner_text("#rollout-state") == "paused"
    assert "checking the canary by hand" in page.inner_text("#history")
    page.close()
