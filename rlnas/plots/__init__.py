"""Old home of the plots; everything now lives in :mod:`rlnas.reports`."""
