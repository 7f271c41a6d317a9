"""Throwaway TLS files for tests, made with the `openssl` command (no Python
dependency for it): a CA, and certificates it signs for loopback.

A real CA and a real chain, so that what is tested is what a deployment does: the
client verifies the broker's certificate against KAFKA_SSL_CAFILE, hostname included.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

DAYS = "2"
# Elliptic-curve keys: made in milliseconds (RSA takes about a second under load), and
# taken by Python's ssl and by Kafka's PEM key stores alike.
KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1")


@dataclass(frozen=True, slots=True)
class Issued:
    """A certificate, its private key (PKCS#8, unencrypted), and both in one file as
    a Kafka PEM keystore wants them."""

    certfile: Path
    keyfile: Path
    keystore: Path


@dataclass(frozen=True, slots=True)
class TestCA:
    __test__ = False  # not a test class, whatever pytest thinks of its name

    folder: Path
    certfile: Path
    keyfile: Path

    def issue(self, name: str, *, hosts: tuple[str, ...] = ("localhost",), ips: tuple[str, ...] = ("127.0.0.1",)) -> Issued:
        """A certificate for `name` valid for these host names and addresses, usable by
        a server and a client (mutual TLS)."""
        key, csr, cert = (self.folder / f"{name}{suffix}" for suffix in (".key", ".csr", ".pem"))
        _openssl("req", *KEY, "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={name}")
        alt_names = ",".join([f"DNS:{host}" for host in hosts] + [f"IP:{ip}" for ip in ips])
        extensions = self.folder / f"{name}.ext"
        extensions.write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=serverAuth,clientAuth\n"
            "subjectKeyIdentifier=hash\n"
            "authorityKeyIdentifier=keyid,issuer\n"
            + (f"subjectAltName={alt_names}\n" if alt_names else "")
        )
        _openssl("x509", "-req", "-in", csr, "-CA", self.certfile, "-CAkey", self.keyfile, "-CAcreateserial",
                 "-out", cert, "-days", DAYS, "-sha256", "-extfile", extensions)
        keystore = self.folder / f"{name}-keystore.pem"
        keystore.write_text(key.read_text() + cert.read_text())
        return Issued(certfile=cert, keyfile=key, keystore=keystore)


def make_ca(folder: Path, name: str = "deskstream-test-ca") -> TestCA:
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    _openssl("req", "-x509", *KEY, "-nodes", "-keyout", key, "-out", cert, "-days", DAYS, "-sha256",
             "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    return TestCA(folder=folder, certfile=cert, keyfile=key)


def _openssl(*args: object) -> None:
    result = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise RuntimeError(f"openssl {args[0]} failed: {result.stderr}")
