"""``python -m rlnas.testing.cli ...``: the ``rlnas`` command with the test helpers registered
(space ``toy``; evaluators ``toy``, ``slow_toy``, ``hanging_toy``, ``dying_toy``, ``counting_toy``,
``toy_supernet``; agent ``toy_ws``)."""
from __future__ import annotations

import rlnas.testing  # noqa: F401  (registers the evaluators and the toy weight-sharing agent)
from rlnas.cli import main
from rlnas.spaces import register_space
from rlnas.testing.toy import toy_space
from rlnas.testing.weight_sharing import registered_toy_agent

if __name__ == "__main__":
    register_space("toy", toy_space)
    with registered_toy_agent():
        raise SystemExit(main())
