"""bench/overhead.py's parts: the request bodies, the measured cells, the runner that fills
them and the Markdown report (the servers and load generators are bench/harness/'s)."""
