"""Files served from memory: read once, with their content type and a strong ETag.

Kept apart from the routes (`lobby.http.webclient`) so the app state
(`lobby.state.ASSETS`) can name `Asset` without importing the routes.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from pathlib import Path

TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".mjs": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".txt": "text/plain",
    ".LICENSE": "text/plain",
    ".NOTICE": "text/plain",
    ".md": "text/markdown",
}
TEXT = ("text/", "image/svg+xml")


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str
    cache_control: str


def load_asset(path: Path, cache_control: str) -> Asset:
    body = path.read_bytes()
    kind = (
        TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    )
    if kind.startswith(TEXT):
        kind += "; charset=utf-8"
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    return Asset(body, kind, etag, cache_control)


def load_folder(folder: Path, cache_control: str) -> dict[str, Asset]:
    if not folder.is_dir():
        return {}
    return {p.name: load_asset(p, cache_control) for p in sorted(folder.iterdir()) if p.is_file()}
