"""bench/cost.py's parts: the configuration, the priced measurements, the replay and the
report."""
