"""A run of the checks, without pytest: its options, its evidence sources, its results and what it ends with.

options.py (RunOptions, read once) → sources.py (one evidence source per mode, a registry) → run.py (Run:
members, collection, results, finish() → RunOutcome) ; handover.py carries the evidence to xdist workers. The
pytest hooks (aksid/plugin.py) drive a Run; nothing here imports them, or pytest.
"""
