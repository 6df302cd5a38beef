"""bench/soak.py's parts: the parameters and servers, the mix and its client, the outcomes,
the run and the report."""
