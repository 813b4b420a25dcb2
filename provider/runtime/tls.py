"""The plugin's TLS certificate: made once, cached per user, read back without importing cryptography."""

from __future__ import annotations

import os
import time

CACHE_ENV = "CLOUDBACKUP_PLUGIN_CACHE"
VALID_DAYS = 30
RENEW_BEFORE_SECONDS = 24 * 3600


def cache_dir() -> str:
    """The cache: $CLOUDBACKUP_PLUGIN_CACHE, else cloudbackup/ in $XDG_CACHE_HOME or ~/.cache."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return explicit
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "cloudbackup")


def certificate() -> tuple[str, str]:
    """(path of one PEM file holding key and certificate, the DER certificate in unpadded base64).

    The file's first line carries the expiry and the base64 DER that go-plugin's handshake wants, so
    a start reads one small file; PEM readers skip text outside the BEGIN/END blocks. One file, replaced
    atomically, keeps key, certificate and handshake consistent when several plugins start at once.
    """
    directory = cache_dir()
    path = os.path.join(directory, "plugin-tls.pem")
    try:
        with open(path) as pem:
            marker, not_after, der_b64 = pem.readline().split()
        if marker == "#" and float(not_after) - time.time() > RENEW_BEFORE_SECONDS:
            return path, der_b64
    except (OSError, ValueError):
        pass
    return _create(directory, path)


def _create(directory: str, path: str) -> tuple[str, str]:
    """A fresh self-signed P-256 certificate for "localhost"."""
    import base64
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    os.makedirs(directory, mode=0o700, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    not_after = now + datetime.timedelta(days=VALID_DAYS)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=True,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    der_b64 = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode().rstrip("=")
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    header = f"# {not_after.timestamp():.0f} {der_b64}\n".encode()
    from contract.files import write_atomic

    write_atomic(path, header + key_pem + cert.public_bytes(serialization.Encoding.PEM))
    return path, der_b64
