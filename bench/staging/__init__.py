"""bench/stages.py's parts: the bodies it times the gateway on, and its report."""
