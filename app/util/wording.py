"""Counted words for messages."""

from __future__ import annotations


def plural(count: int, word: str) -> str:
    """plural(1, "file") -> "1 file"; plural(12345, "file") -> "12,345 files"."""
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"
