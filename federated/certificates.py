"""A test certificate authority and TLS certificates for a local deployment.

`make_test_certificates` writes, with the ``cryptography`` library, what a
SuperLink and its SuperNodes need to talk over TLS on one machine: a CA
(``ca.crt``, ``ca.key``) and a server certificate for the SuperLink
(``server.pem``, ``server.key``) valid for ``localhost`` and ``127.0.0.1``, plus
one EC key pair per SuperNode for SuperNode authentication
(``<site>.key`` / ``<site>.pub``, OpenSSH format, as Flower reads them). For tests and
trials only: a hospital uses certificates from its own PKI.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

VALID_DAYS = 30


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "cardiorisk test"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    path: Path,
    form: serialization.PrivateFormat = serialization.PrivateFormat.PKCS8,
) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, form, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)


def make_test_certificates(folder: Path, sites: list[str]) -> dict[str, Path]:
    """Write a test CA, the SuperLink's certificate and a key pair per site.

    Parameters
    ----------
    folder : Path
        Created if needed; existing files are replaced.
    sites : list of str
        One SuperNode key pair each.

    Returns
    -------
    dict
        ``ca``, ``server_cert``, ``server_key`` and ``<site>.key`` /
        ``<site>.pub`` -> path.
    """
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("cardiorisk test CA"))
        .issuer_name(_name("cardiorisk test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = {
        "ca": folder / "ca.crt",
        "server_cert": folder / "server.pem",
        "server_key": folder / "server.key",
    }
    paths["ca"].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_key(ca_key, folder / "ca.key")
    paths["server_cert"].write_bytes(
        server_cert.public_bytes(serialization.Encoding.PEM)
    )
    _write_key(server_key, paths["server_key"])
    for site in sites:
        key = ec.generate_private_key(ec.SECP384R1())
        paths[f"{site}.key"] = folder / f"{site}.key"
        paths[f"{site}.pub"] = folder / f"{site}.pub"
        _write_key(key, paths[f"{site}.key"], serialization.PrivateFormat.OpenSSH)
        paths[f"{site}.pub"].write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
            )
        )
    return paths
