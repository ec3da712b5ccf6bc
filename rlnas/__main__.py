"""``python -m rlnas``: the ``rlnas`` command (where its console script is not on the PATH)."""
from rlnas.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
