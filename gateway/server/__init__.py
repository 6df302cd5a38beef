"""The edge: path to endpoint, head limits (the disconnect watch, which the emulator shares,
is gateway/asgi/)."""
