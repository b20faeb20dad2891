"""Signed documents: Ed25519 over canonical JSON (pure: no files, no clock).

The hub signs each device's desired configuration; the agent verifies it with the hub's
public key from its enrollment bundle. On the wire (``config/desired``) a signed document is
an *envelope*::

    {"v": 1, "alg": "ed25519", "key_id": "<16 hex>", "doc": {...}, "sig": "<base64url>"}

``sig`` is the signature of ``canonical_json(doc)``; ``key_id`` names the key (the first 16 hex
digits of the SHA-256 of its raw 32 bytes), so a document signed by another hub (or an old
key) is told apart from a tampered one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from dcor_wire.canonical import canonical_json

ALG: Final = "ed25519"
ENVELOPE_VERSION: Final = 1

# Why a document was refused; the agent reports these codes as they are.
UNSIGNED: Final = "unsigned"
MALFORMED: Final = "malformed"
WRONG_KEY: Final = "wrong_key"
BAD_SIGNATURE: Final = "bad_signature"


class SignatureError(ValueError):
    """The envelope is not signed, not ours, or altered. ``reason`` is one of the codes above."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def private_key_from_pem(pem: bytes) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"the signing key must be Ed25519, not {type(key).__name__}")
    return key


def public_key_from_pem(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a PEM public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"the hub key must be Ed25519, not {type(key).__name__}")
    return key


def sign(doc: Mapping[str, Any], private_key: Ed25519PrivateKey) -> dict[str, Any]:
    """The envelope of ``doc``. Raises ``ValueError`` for what JSON cannot carry exactly
    (NaN, infinities, non-string keys)."""
    body = dict(doc)
    sig = private_key.sign(canonical_json(body))
    return {"v": ENVELOPE_VERSION, "alg": ALG, "key_id": key_id(private_key.public_key()),
            "doc": body, "sig": base64.urlsafe_b64encode(sig).decode("ascii")}


def verify(envelope: Mapping[str, Any] | bytes, public_key: Ed25519PublicKey) -> dict[str, Any]:
    """The document inside a valid envelope; ``SignatureError`` (with ``reason``) otherwise.

    Order of checks: shape (``malformed``), presence of a signature (``unsigned``), the key
    it names (``wrong_key``), the signature over the canonical document (``bad_signature``).
    """
    env = _parse(envelope)
    if "sig" not in env or "alg" not in env:
        raise SignatureError(UNSIGNED, "the document carries no signature")
    if env.get("v") != ENVELOPE_VERSION or env.get("alg") != ALG:
        raise SignatureError(MALFORMED, f"unsupported envelope v={env.get('v')!r} "
                                        f"alg={env.get('alg')!r}")
    doc = env.get("doc")
    sig_text = env.get("sig")
    if not isinstance(doc, dict) or not isinstance(sig_text, str):
        raise SignatureError(MALFORMED, "envelope needs an object 'doc' and a string 'sig'")
    ours = key_id(public_key)
    if env.get("key_id") != ours:
        raise SignatureError(WRONG_KEY, f"signed with key {str(env.get('key_id'))[:16]!r}, "
                                        f"this box trusts {ours}")
    try:
        sig = base64.urlsafe_b64decode(sig_text.encode("ascii"))
        public_key.verify(sig, canonical_json(doc))
    except (InvalidSignature, binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise SignatureError(BAD_SIGNATURE, "the signature does not match the document "
                                            "(altered after signing)") from exc
    return doc


def _parse(envelope: Mapping[str, Any] | bytes) -> dict[str, Any]:
    if isinstance(envelope, bytes | bytearray):
        try:
            parsed = json.loads(envelope)
        except (ValueError, RecursionError) as exc:
            raise SignatureError(MALFORMED, f"not JSON: {str(exc)[:120]}") from exc
    else:
        parsed = dict(envelope)
    if not isinstance(parsed, dict):
        raise SignatureError(MALFORMED, "the envelope must be a JSON object")
    return parsed


def digest(obj: Any) -> str:
    """``sha256:<hex>`` of the canonical JSON of ``obj`` (a configuration's content id)."""
    return "sha256:" + hashlib.sha256(canonical_json(obj)).hexdigest()
