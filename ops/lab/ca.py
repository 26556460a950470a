"""The lab's certificate authority: it signs the lab PostgreSQL's certificate, and clients
verify the server against it (verify-full), as they verify RDS against its CA bundle."""

from __future__ import annotations

import datetime
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ops.lab.state import LabState

VALID = datetime.timedelta(days=3650)


def certificate(lab: LabState) -> Path:
    """The CA's certificate (PEM), made once with its key (0600) in the lab's directory."""
    cert, key = lab.dir / "ca.crt", lab.dir / "ca.key"
    if cert.exists() and key.exists():
        return cert
    lab.ensure_dir()
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{lab.name} lab CA")])
    made = (_builder(name, name, private.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(private, hashes.SHA256()))
    key.touch(mode=0o600)
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    cert.write_bytes(made.public_bytes(serialization.Encoding.PEM))
    return cert


def server(lab: LabState, hostname: str, address: str) -> tuple[bytes, bytes]:
    """A server key and certificate (PEM) for `hostname` at `address`, signed by the CA."""
    ca_cert = x509.load_pem_x509_certificate(certificate(lab).read_bytes())
    ca_key = serialization.load_pem_private_key((lab.dir / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    made = (_builder(name, ca_cert.subject, private.public_key())
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName(hostname), x509.IPAddress(ipaddress.ip_address(address))]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    return (private.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.TraditionalOpenSSL,
                                  serialization.NoEncryption()),
            made.public_bytes(serialization.Encoding.PEM))


def _builder(subject: x509.Name, issuer: x509.Name,
             public: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(public).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + VALID))
