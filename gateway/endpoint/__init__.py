"""The endpoints a request path leads to (server/edge.py), each a pure ASGI app.

flow.py runs every call top to bottom: authenticate → read → prepare → admit → answer →
finish. A model call (model_call.py) prepares by rewriting and answers with routing,
fallbacks, hedges, coalescing and a shadow; a pass-through (pass_through.py) sends the body
as it came. Both use the small steps in steps.py; relay.py sends the bytes; after the call,
each observer (observers.py) is given the one frozen record (record.py).
"""
