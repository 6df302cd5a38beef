"""The endpoints a request path leads to (server/edge.py), each a pure ASGI app.

A model call (model_call.py) goes parse → authenticate → rewrite → authorize → dispatch →
relay → finish; a pass-through (pass_through.py) skips the rewrite, the routing and the
charge. Both share the steps in steps.py; relay.py sends the bytes; after the call, each
observer (observers.py) is given the one frozen record (record.py).
"""
