"""Generic ASGI helpers that know nothing of the gateway: shared by the gateway's edge and
the emulator, which must not depend on the gateway's own code. Imports nothing from gateway."""
