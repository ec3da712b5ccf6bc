"""The HTML report in a real browser (headless Chromium): plots and table render, nothing is fetched.

Chromium comes from Debian's package (``scripts/install_test_deps.sh``). Without it the test
skips, unless ``RLNAS_REQUIRE_BROWSER=1`` (CI), where a missing browser is a failure.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from report_study import write_nb201_report

pytest.importorskip("matplotlib")

from rlnas.testing.browser import find_chromium, inspect_page

CHECKS = """(() => {
  const images = Array.from(document.images);
  const table = document.querySelector('#best');
  const trialColumn = () => Array.from(table.tBodies[0].rows).map(r => Number(r.cells[1].dataset.value));
  const before = trialColumn();
  table.tHead.rows[0].cells[1].click();
  const sorted = trialColumn();
  return {
    images: images.length,
    drawn: images.filter(i => i.complete && i.naturalWidth > 100 && i.naturalHeight > 100).length,
    rows: table.tBodies[0].rows.length,
    tableWidth: table.getBoundingClientRect().width,
    architectureNodes: document.querySelectorAll('#architecture svg circle').length,
    before: before, sorted: sorted,
  };
})()"""


def _chromium() -> str:
    path = find_chromium()
    if path is None:
        message = "chromium is not installed: run scripts/install_test_deps.sh"
        if os.environ.get("RLNAS_REQUIRE_BROWSER") == "1":
            pytest.fail(message + " (RLNAS_REQUIRE_BROWSER=1)")
        pytest.skip(message)
    return path


def _outgoing(requests: tuple[str, ...], page: Path) -> list[str]:
    """Requests other than the page itself and its inline ``data:`` sources."""
    return [url for url in requests if url != page.resolve().as_uri() and not url.startswith("data:")]


def test_report_renders_in_chromium_without_any_request(tmp_path: Path) -> None:
    chromium = _chromium()
    page = write_nb201_report(tmp_path / "report.html", trials=60)
    seen = inspect_page(page, CHECKS, chromium=chromium)
    assert _outgoing(seen.requests, page) == []
    assert seen.console_errors == ()
    value = seen.value
    assert value["images"] == 5 and value["drawn"] == 5
    assert value["rows"] == 20 and value["tableWidth"] > 600
    assert value["architectureNodes"] == 4
    assert value["sorted"] == sorted(value["before"]) != value["before"]  # clicking "trial" sorted the table
    import matplotlib.image

    pixels = matplotlib.image.imread(__import__("io").BytesIO(seen.screenshot), format="png")
    assert pixels.shape[1] == 1200 and pixels.shape[0] > 2000
    assert (pixels[..., :3].std(axis=(0, 1)) > 0.05).all()  # not a blank page


def test_the_request_check_sees_a_page_that_does_fetch(tmp_path: Path) -> None:
    chromium = _chromium()
    page = tmp_path / "leaky.html"
    page.write_text('<!DOCTYPE html><html><body><img src="http://127.0.0.1:9/x.png"></body></html>')
    seen = inspect_page(page, "document.images.length", chromium=chromium)
    assert _outgoing(seen.requests, page) == ["http://127.0.0.1:9/x.png"] and seen.value == 1


def test_the_report_fits_a_narrow_window(tmp_path: Path) -> None:
    # at 400 px the fixed-width cell drawing and the wide table made the whole page scroll sideways (776 px)
    chromium = _chromium()
    page = write_nb201_report(tmp_path / "report.html", trials=60)
    seen = inspect_page(page, "[document.documentElement.scrollWidth, "
                              "document.querySelector('#architecture svg').getBoundingClientRect().width]",
                        width=400, chromium=chromium)
    page_width, drawing_width = seen.value
    assert page_width <= 400 and drawing_width <= 400
