"""What time a request happens at: the wall clock, or a virtual one set per request.

With the virtual clock a benchmark replays a day of traffic in seconds: each request
says what "now" is (`x-emulator-now`, Unix seconds), and cache TTLs run on that time.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from gateway.emulator.errors import invalid_request

VIRTUAL_NOW_HEADER = "x-emulator-now"


def request_time(headers: Mapping[str, str], virtual_clock: bool) -> float:
    if virtual_clock and (value := headers.get(VIRTUAL_NOW_HEADER)) is not None:
        try:
            return float(value)
        except ValueError:
            raise invalid_request(
                f"{VIRTUAL_NOW_HEADER}: expected Unix seconds, got {value!r}"
            ) from None
    return time.time()
