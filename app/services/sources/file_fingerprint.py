"""What a file is: size, modification time and SHA-256 (to recognise it in later imports)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from app.models.jobs import FileFingerprint

_HASH_CHUNK = 1 << 20


def fingerprint(path: Path) -> FileFingerprint:
    """Size, modification time and SHA-256 of a file, read in slices."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        stat = os.fstat(handle.fileno())
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return FileFingerprint(str(path), stat.st_size, digest.hexdigest(), stat.st_mtime)
