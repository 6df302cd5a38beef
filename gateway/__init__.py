"""Tollgate: an LLM gateway that makes agent traffic cheaper and faster, and proves it."""

__version__ = "0.1.0"
