"""Describe an X.509 certificate seen on the wire, for the TLS facts.

The DER comes from a captured Certificate message, so it is hostile: every field is read
through `cryptography` (never by hand) and each read is guarded on its own, so one odd
extension costs that field, not the whole description.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import warnings
from datetime import datetime, timezone

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.x509.oid import ExtensionOID, NameOID

log = logging.getLogger(__name__)

# Certificates on the wire are a few KB; a chain element far beyond this is not one we parse.
MAX_CERTIFICATE_BYTES = 64 * 1024

# cryptography writes unknown attribute types as dotted OIDs; these are common enough to name.
_NAME_OVERRIDES = {
    NameOID.EMAIL_ADDRESS: "emailAddress",
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.GIVEN_NAME: "GN",
    NameOID.SURNAME: "SN",
    NameOID.TITLE: "title",
}


def _fingerprint(der: bytes, algorithm: str) -> str:
    return ":".join(f"{b:02x}" for b in hashlib.new(algorithm, der).digest())


def _one_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _empty(der: bytes, error: str | None) -> dict:
    return {
        "subject": None, "issuer": None, "subject_cn": None, "issuer_cn": None,
        "san_dns": [], "san_ip": [], "serial": None, "not_before": None, "not_after": None,
        "expired": None, "not_yet_valid": None, "self_signed": None, "key_type": None,
        "key_bits": None, "signature_algorithm": None,
        "sha1": _fingerprint(der, "sha1"), "sha256": _fingerprint(der, "sha256"),
        "error": error, "_not_before": None, "_not_after": None,
    }


def _name_string(name: x509.Name) -> str:
    # RFC 4514 writes the last RDN first, which for conventionally built certificates puts
    # CN first ("CN=host,O=Org,C=US").
    return name.rfc4514_string(_NAME_OVERRIDES)


def _common_name(name: x509.Name) -> str | None:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not values:
        return None
    value = values[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def _key_facts(cert: x509.Certificate) -> tuple[str | None, int | None]:
    key = cert.public_key()
    if isinstance(key, rsa.RSAPublicKey):
        return "RSA", key.key_size
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "EC", key.curve.key_size
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519", 256
    if isinstance(key, ed448.Ed448PublicKey):
        return "Ed448", 456
    if isinstance(key, dsa.DSAPublicKey):
        return "DSA", key.key_size
    return type(key).__name__.removesuffix("PublicKey").lstrip("_"), None


def _is_self_signed(cert: x509.Certificate) -> bool:
    if cert.subject != cert.issuer:
        return False
    try:
        cert.verify_directly_issued_by(cert)
    except (InvalidSignature, ValueError):
        # ValueError: the signature scheme does not fit the certificate's own key type.
        return False
    except (TypeError, UnsupportedAlgorithm) as exc:
        # A key or signature scheme cryptography cannot check: the names are all we have.
        log.debug("self-signature not checkable: %s", exc)
    return True


def describe_certificate(der: bytes, now: datetime | None = None) -> dict:
    """Facts about one DER certificate (see `_describe`); never raises, never warns.

    cryptography warns about certificates it will refuse in future (a negative serial, say);
    for captured certificates that is a property of the peer, so it is kept in the result
    under ``warnings`` instead of reaching the user's terminal.
    """
    if isinstance(der, (bytearray, memoryview)):
        der = bytes(der)
    cached = isinstance(der, bytes) and len(der) <= MAX_CACHED_BYTES
    timeless = _timeless(der) if cached else _read(der)
    facts = {key: list(value) if isinstance(value, list) else value
             for key, value in timeless.items() if not key.startswith("_")}
    moment = now or datetime.now(timezone.utc)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    if timeless["_not_before"] is not None:
        facts["not_yet_valid"] = moment < timeless["_not_before"]
    if timeless["_not_after"] is not None:
        facts["expired"] = moment > timeless["_not_after"]
    return facts


# A cluster shows the same few certificates on every connection (one per component, a
# CA's chain): each DER is read and its signature checked once. The 1,011 TLS flows of
# the 100 MB benchmark capture spent 0.3 s doing it per flow.
# Only DER of a usual certificate's size is remembered (at most 256 x 8 KiB).
MAX_CACHED_BYTES = 8 * 1024


@functools.lru_cache(maxsize=256)
def _timeless(der: bytes) -> dict:
    return _read(der)


def _read(der) -> dict:
    """`_describe` with the warnings cryptography gives kept in the facts."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        facts = _describe(der)
    facts["warnings"] = sorted({str(w.message).split(". ")[0] for w in caught})[:5]
    return facts


def _describe(der: bytes) -> dict:
    """Facts about one DER certificate that do not depend on the time of asking.

    Returns a dict with subject/issuer (RFC 4514 strings), their CNs, ``san_dns``/``san_ip``,
    ``serial`` (lowercase hex), ``not_before``/``not_after`` (ISO 8601, UTC) and the same
    two as datetimes under ``_not_before``/``_not_after`` (None where unreadable; the
    caller sets ``expired`` and ``not_yet_valid`` from them), ``self_signed``,
    ``key_type``/``key_bits``, ``signature_algorithm``, colon-separated ``sha1``/``sha256``
    fingerprints of the DER, and ``error``: None, or a one-line reason when the DER (or one of
    its fields) could not be read. Never raises.
    """
    if not isinstance(der, (bytes, bytearray, memoryview)):
        return _empty(b"", f"not bytes: {type(der).__name__}")
    der = bytes(der)
    if len(der) > MAX_CERTIFICATE_BYTES:
        return _empty(der, f"certificate of {len(der)} bytes exceeds {MAX_CERTIFICATE_BYTES}")
    try:
        cert = x509.load_der_x509_certificate(der)
    except Exception as exc:
        return _empty(der, f"unparseable DER: {_one_line(exc)}")

    facts = _empty(der, None)
    problems: list[str] = []

    def guarded(field: str, read):
        try:
            return read()
        except Exception as exc:
            problems.append(f"{field}: {_one_line(exc)}")
            return None

    facts["subject"] = guarded("subject", lambda: _name_string(cert.subject))
    facts["issuer"] = guarded("issuer", lambda: _name_string(cert.issuer))
    facts["subject_cn"] = guarded("subject_cn", lambda: _common_name(cert.subject))
    facts["issuer_cn"] = guarded("issuer_cn", lambda: _common_name(cert.issuer))
    facts["serial"] = guarded("serial", lambda: format(cert.serial_number, "x"))

    def read_san():
        try:
            ext = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
        except x509.ExtensionNotFound:
            return [], []
        names = ext.value
        return (list(names.get_values_for_type(x509.DNSName)),
                [str(ip) for ip in names.get_values_for_type(x509.IPAddress)])

    san = guarded("subjectAltName", read_san)
    if san:
        facts["san_dns"], facts["san_ip"] = san

    not_before = guarded("not_before", lambda: cert.not_valid_before_utc)
    not_after = guarded("not_after", lambda: cert.not_valid_after_utc)
    facts["_not_before"], facts["_not_after"] = not_before, not_after
    if not_before is not None:
        facts["not_before"] = not_before.isoformat()
    if not_after is not None:
        facts["not_after"] = not_after.isoformat()

    key = guarded("public_key", lambda: _key_facts(cert))
    if key:
        facts["key_type"], facts["key_bits"] = key

    def read_signature_algorithm():
        oid = cert.signature_algorithm_oid
        name = getattr(oid, "_name", None)
        return name if name and name != "Unknown OID" else oid.dotted_string

    facts["signature_algorithm"] = guarded("signature_algorithm", read_signature_algorithm)
    facts["self_signed"] = guarded("self_signed", lambda: _is_self_signed(cert))

    if problems:
        facts["error"] = "; ".join(problems)[:300]
    return facts
