"""Where the bytes of e-mail attachments are kept: a folder, one file per content hash.

Events carry only an attachment's metadata (name, type, size, sha256); an agent
fetches the bytes from here by hash. Content-addressed, so a message taken twice
(a crash before it was flagged) stores nothing twice.
"""
from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class AttachmentStore:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, sha256: str) -> Path:
        if not _SHA256.match(sha256):
            raise ValueError("not a sha256 hex digest")
        return self.folder / sha256[:2] / sha256

    def put(self, sha256: str, content: bytes) -> Path:
        """Keep `content` under its hash (blocking: call it in a thread)."""
        target = self.path(sha256)
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        # A name no other writer uses: on a volume shared by several workers (each pid 1
        # in its container) two of them may store the same attachment at once.
        partial = target.with_suffix(f".{uuid.uuid4().hex}.partial")
        partial.write_bytes(content)
        os.replace(partial, target)  # whole or not at all
        return target

    def get(self, sha256: str) -> bytes | None:
        target = self.path(sha256)
        return target.read_bytes() if target.exists() else None

    def delete(self, sha256: str) -> bool:
        """Remove an attachment's bytes (an erasure); True if there were any. Deleting
        one that is gone already is no error: an erasure handled again finds nothing."""
        try:
            self.path(sha256).unlink()
        except FileNotFoundError:
            return False
        return True
