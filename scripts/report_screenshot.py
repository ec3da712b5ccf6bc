"""Write docs/images/report.png: the HTML report of a finished NB201 study, as headless Chromium shows it.

Run from the repository root: ``python scripts/report_screenshot.py`` (needs chromium and matplotlib).
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "reports"))

from report_study import write_nb201_report  # noqa: E402

from rlnas.testing.browser import inspect_page  # noqa: E402


def main() -> None:
    """Build the report in a temporary folder and save its full-page screenshot."""
    import torch

    torch.set_num_threads(1)
    out = ROOT / "docs" / "images" / "report.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        page = write_nb201_report(Path(tmp) / "report.html", trials=200)
        out.write_bytes(inspect_page(page, width=1100).screenshot)
    print(f"wrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
