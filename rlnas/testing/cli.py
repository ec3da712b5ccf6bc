"""``python -m rlnas.testing.cli ...``: the ``rlnas`` command with the test helpers registered
(space ``toy``; evaluators ``toy``, ``slow_toy``, ``hanging_toy``, ``dying_toy``, ``toy_supernet``)."""
from __future__ import annotations

import rlnas.testing  # noqa: F401  (registers the helpers)
from rlnas.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
