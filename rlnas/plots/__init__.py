"""Plot data as pure functions, and their matplotlib renderers (``pip install rlnas[plot]``)."""
