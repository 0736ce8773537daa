"""TLS on the players' port: one `ssl.SSLContext` whose certificate follows its files.

A Kubernetes Secret volume replaces its files by swapping a `..data` symlink, so
the paths stay the same while what they point at changes. `CertificateReloader`
remembers the identity (device, inode, mtime, size) of the resolved targets and,
when it changes, reads the new pair, checks it on a scratch context and only then
calls `load_cert_chain` again on the live context: new connections get the new
certificate, open ones keep theirs, and a bad pair is logged while the old one
stays in use.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509

log = logging.getLogger(__name__)

FileId = tuple[int, int, int, int]  # st_dev, st_ino, st_mtime_ns, st_size


@dataclass(frozen=True)
class LoadedCertificate:
    serial: int
    not_after: datetime
    subject: str


def _file_id(path: Path) -> FileId | None:
    try:
        st = os.stat(path)  # follows symlinks: the identity of the target
    except OSError:
        return None
    return (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)


def server_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class CertificateReloader:
    """The game port's TLS context and the watcher that keeps its certificate current.

    `on_reload(outcome, certificate)` is told of every attempt after the first load:
    outcome "loaded" (with the new certificate) or "failed" (with the one kept)."""

    def __init__(
        self,
        cert_file: Path,
        key_file: Path,
        on_reload: Callable[[str, LoadedCertificate | None], None] | None = None,
    ) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self.on_reload = on_reload
        self.context = server_context()
        self.certificate: LoadedCertificate | None = None
        self._seen: tuple[FileId | None, FileId | None] = (None, None)
        self._seen = self._identity()
        self.certificate = self._load()  # a bad pair at start-up raises: the process exits

    def _identity(self) -> tuple[FileId | None, FileId | None]:
        return _file_id(self.cert_file), _file_id(self.key_file)

    def _load(self) -> LoadedCertificate:
        """Read the pair once, check it on a scratch context, then load it into the live
        one (from the same bytes, so a swap in between cannot mix two pairs)."""
        cert_pem = self.cert_file.read_bytes()
        key_pem = self.key_file.read_bytes()
        leaf = x509.load_pem_x509_certificate(cert_pem)
        with tempfile.TemporaryDirectory(prefix="tls-") as tmp:
            cert_path, key_path = Path(tmp, "tls.crt"), Path(tmp, "tls.key")
            cert_path.write_bytes(cert_pem)
            key_path.touch(mode=0o600)
            key_path.write_bytes(key_pem)
            server_context().load_cert_chain(cert_path, key_path)  # raises on a bad pair
            self.context.load_cert_chain(cert_path, key_path)
        return LoadedCertificate(
            serial=leaf.serial_number,
            not_after=leaf.not_valid_after_utc,
            subject=leaf.subject.rfc4514_string(),
        )

    def check(self) -> str | None:
        """Reload if the files changed: "loaded", "failed" (old pair kept) or None."""
        identity = self._identity()
        if identity == self._seen or None in identity:
            return None  # unchanged, or mid-swap (a file missing): look again next time
        self._seen = identity
        try:
            loaded = self._load()
        except (OSError, ValueError, ssl.SSLError) as exc:
            log.error(
                "tls certificate reload failed; keeping the current one",
                extra={
                    "cert_file": str(self.cert_file),
                    "error": repr(exc),
                    "serial": self.certificate and format(self.certificate.serial, "x"),
                },
            )
            if self.on_reload is not None:
                self.on_reload("failed", self.certificate)
            return "failed"
        self.certificate = loaded
        log.info(
            "tls certificate reloaded",
            extra={
                "serial": format(loaded.serial, "x"),
                "subject": loaded.subject,
                "not_after": loaded.not_after.isoformat(),
            },
        )
        if self.on_reload is not None:
            self.on_reload("loaded", loaded)
        return "loaded"

    async def watch(self, interval_s: float) -> None:
        """Check the files every `interval_s` until cancelled. The check runs on the loop's
        thread: the live context is never changed while a connection is being set up."""
        while True:
            await asyncio.sleep(interval_s)
            self.check()
