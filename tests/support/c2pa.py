"""A throwaway C2PA certificate chain and masters that carry a manifest, for the provenance tests.

C2PA validators want an end-entity certificate with the digitalSignature key usage and an
emailProtection (or documentSigning) extended key usage, issued by a CA: one test root signs a
"camera" certificate (the masters' manifests) and an "origin" one (the renditions').
"""

from __future__ import annotations

import datetime
import io
from dataclasses import dataclass
from pathlib import Path

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CAPTURE = "http://cv.iptc.org/newscodes/digitalsourcetype/digitalCapture"


def _name(cn: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "edge test")]
    )


def _usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
        key_agreement=False, key_cert_sign=ca, crl_sign=ca, encipher_only=False, decipher_only=False,
    )  # fmt: skip


@dataclass(frozen=True)
class Chain:
    root: Path  # the trust anchor (PEM)
    camera: tuple[Path, Path]  # (certificate chain, key) that signs the masters
    origin: tuple[Path, Path]  # ... that the server signs renditions with


def make_chain(directory: Path) -> Chain:
    now = datetime.datetime.now(datetime.UTC)
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = (
        x509.CertificateBuilder().subject_name(_name("edge test root")).issuer_name(_name("edge test root"))
        .public_key(root_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )  # fmt: skip
    root_pem = root.public_bytes(serialization.Encoding.PEM)
    (directory / "root.pem").write_bytes(root_pem)

    def leaf(cn: str) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(root.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=7))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(root_key, hashes.SHA256())
        )  # fmt: skip
        pem, key_path = directory / f"{cn}.pem", directory / f"{cn}.key"
        pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + root_pem)
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        return pem, key_path

    return Chain(directory / "root.pem", leaf("camera"), leaf("origin"))


def with_manifest(data: bytes, mime: str, title: str, chain: Chain) -> bytes:
    """The image with a camera's manifest: created, as a digital capture."""
    cert, key = chain.camera
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", cert.read_bytes(), key.read_bytes(), None))
    manifest = {
        "claim_generator_info": [{"name": "test-camera", "version": "1.0"}],
        "title": title,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": [{"action": "c2pa.created", "digitalSourceType": CAPTURE}]}}
        ],
    }
    context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    out = io.BytesIO()
    with c2pa.Builder(manifest, context=context) as builder:
        builder.sign(signer, mime, io.BytesIO(data), out)
    return out.getvalue()
