"""Throwaway certificates for tests: a CA and the wildcard server certificates it signs.

`ThrowawayCA.create(dir)` writes `ca.crt`; `ca.issue(["*.play.test"])` writes a leaf and
its key. Clients trust the CA through their own options (Python `DialOptions(ca_file)`,
Node `ca`, Chromium `--ignore-certificate-errors-spki-list=<spki_sha256>`), never the
system's trust store.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

TEST_DOMAIN = "play.test"  # `*.play.test`: names of the form 127-0-0-1.play.test


def spki_sha256(certificate: x509.Certificate) -> str:
    """Base64 SHA-256 of the SubjectPublicKeyInfo (Chromium's SPKI list format)."""
    der = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def dashed(ip: str) -> str:
    """`127.0.0.1` -> `127-0-0-1` (the label a node address gets under the domain)."""
    return ip.replace(".", "-").replace(":", "-")


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class ServerCertificate:
    cert_file: Path  # the leaf then the CA (a chain, as cert-manager writes tls.crt)
    key_file: Path
    serial: int
    spki_sha256: str
    certificate: x509.Certificate


@dataclass(frozen=True)
class ThrowawayCA:
    directory: Path
    cert_file: Path
    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def spki_sha256(self) -> str:
        return spki_sha256(self.certificate)

    @classmethod
    def create(cls, directory: Path, name: str = "TradeArena test CA") -> ThrowawayCA:
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        cert_file = directory / "ca.crt"
        cert_file.write_bytes(_pem(certificate))
        return cls(directory, cert_file, certificate, key)

    def issue(
        self,
        dns_names: list[str],
        name: str = "server",
        *,
        ip_addresses: tuple[str, ...] = (),
        valid_days: int = 1,
    ) -> ServerCertificate:
        """A server certificate for `dns_names` (wildcards allowed), written as
        `<name>.crt` (leaf + CA) and `<name>.key`."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.now(UTC)
        alt: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
        alt += [x509.IPAddress(ipaddress.ip_address(a)) for a in ip_addresses]
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])]))
            .issuer_name(self.certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=valid_days))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
            .sign(self.key, hashes.SHA256())
        )
        cert_file = self.directory / f"{name}.crt"
        key_file = self.directory / f"{name}.key"
        cert_file.write_bytes(_pem(certificate) + _pem(self.certificate))
        key_file.write_bytes(_key_pem(key))
        key_file.chmod(0o600)
        return ServerCertificate(
            cert_file, key_file, certificate.serial_number, spki_sha256(certificate), certificate
        )


class SecretVolume:
    """A directory laid out like a Kubernetes Secret volume: `tls.crt` and `tls.key` are
    symlinks through `..data`, which `update()` swaps atomically to a fresh directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._generation = 0

    @property
    def cert_file(self) -> Path:
        return self.directory / "tls.crt"

    @property
    def key_file(self) -> Path:
        return self.directory / "tls.key"

    def update(self, cert_pem: bytes, key_pem: bytes) -> None:
        self._generation += 1
        target = self.directory / f"..gen_{self._generation}"
        target.mkdir()
        (target / "tls.crt").write_bytes(cert_pem)
        (target / "tls.key").write_bytes(key_pem)
        staging = self.directory / "..data_tmp"
        staging.symlink_to(target.name)
        staging.replace(self.directory / "..data")  # rename(2): atomic
        for name in ("tls.crt", "tls.key"):
            link = self.directory / name
            if not link.is_symlink():
                link.symlink_to(f"..data/{name}")

    def install(self, certificate: ServerCertificate) -> None:
        self.update(certificate.cert_file.read_bytes(), certificate.key_file.read_bytes())
