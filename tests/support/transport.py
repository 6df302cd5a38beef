"""A socket transport's side the request cycle uses, recording what it is asked to do."""

from __future__ import annotations


class Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.paused: list[bool] = []  # each pause or resume, in order
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def pause_reading(self) -> None:
        self.paused.append(True)

    def resume_reading(self) -> None:
        self.paused.append(False)
