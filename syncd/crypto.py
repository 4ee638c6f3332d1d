"""DingTalk HTTP-callback cryptography: signature, AES-256-CBC envelope, ``success`` reply.

Pure functions on ``str``/``bytes``. The wire format (as DingTalk's own
DingTalk-Callback-Crypto libraries implement it; tests/unit/test_crypto.py checks their
published test vector):

* signature = lowercase hex SHA-1 over the lexicographically sorted concatenation of
  ``token``, ``timestamp``, ``nonce`` and ``encrypt``;
* key = base64-decode(EncodingAESKey + "=") (32 bytes), IV = key[:16], AES-256-CBC;
* plaintext = random16 || uint32_be(len(utf8 msg)) || utf8 msg || utf8 owner_key,
  padded PKCS#7-style to a multiple of **32** bytes; standard base64 outside.

Only ``reply_success`` and ``encrypt`` read the clock / random source, and only for values
the caller did not pass in. The AES key and cipher of an EncodingAESKey are derived once and
kept (:func:`aes_key_from_encoding_key`, ``_cipher``: bounded caches, values only), since a
webhook derives them for every push of the same few tenants.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import secrets
import struct
import time

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from syncd.errors import (
    BadEncoding,
    BadEnvelope,
    BadLength,
    BadPadding,
    BadSignature,
    ConfigError,
    OwnerKeyMismatch,
)

__all__ = [
    "aes_key_from_encoding_key",
    "decrypt",
    "encrypt",
    "open_callback",
    "reply_success",
    "seal",
    "signature",
    "verify_signature",
]

_BLOCK = 32  # DingTalk pads to 32-byte blocks, not AES's 16
_KEYS_KEPT = 256  # distinct EncodingAESKeys whose derived key and cipher are kept


def _sha1(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    joined = "".join(sorted([token, timestamp, nonce, encrypted]))
    # surrogatepass: a JSON body may carry lone surrogates ("\ud800"); they must fail the
    # comparison like any other forgery, not crash the encoder.
    data = joined.encode("utf-8", errors="surrogatepass")
    return hashlib.sha1(data, usedforsecurity=False).hexdigest()


def signature(token: str, timestamp: str, nonce: str, encrypt: str) -> str:
    """The DingTalk signature: sha1 hex of the sorted, concatenated four strings."""
    return _sha1(token, timestamp, nonce, encrypt)


def verify_signature(token: str, timestamp: str, nonce: str, encrypt: str, signature: str) -> None:
    """Raise :class:`BadSignature` unless ``signature`` matches (constant-time compare)."""
    expected = _sha1(token, timestamp, nonce, encrypt)
    if not hmac.compare_digest(
        expected.encode("ascii"), signature.lower().encode("utf-8", errors="surrogatepass")
    ):
        raise BadSignature("callback signature does not match")


@functools.lru_cache(maxsize=_KEYS_KEPT)
def aes_key_from_encoding_key(encoding_aes_key: str) -> bytes:
    """The 32-byte AES key of a 43-character EncodingAESKey; :class:`ConfigError` if malformed.

    Kept per EncodingAESKey (a malformed one raises every time: errors are not cached).
    """
    if len(encoding_aes_key) != 43:
        raise ConfigError(f"EncodingAESKey must be 43 characters, got {len(encoding_aes_key)}")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError("EncodingAESKey is not base64 text") from exc
    if len(key) != 32:  # pragma: no cover - 43 valid base64 chars always give 32 bytes
        raise ConfigError("EncodingAESKey does not decode to 32 bytes")
    return key


@functools.lru_cache(maxsize=_KEYS_KEPT)
def _cipher(key: bytes) -> Cipher[modes.CBC]:
    # A Cipher only describes algorithm, key and IV: each encryptor()/decryptor() is a new
    # context, so one Cipher per key serves every push.
    return Cipher(algorithms.AES(key), modes.CBC(key[:16]))


def _random16() -> bytes:
    # 16 hex digits (letters and digits, like the official samples' random string) carrying
    # 64 random bits: one call, ~1.5 us, instead of 16 secrets.choice (~50 us).
    return secrets.token_hex(8).encode("ascii")


def encrypt(
    message: str, encoding_aes_key: str, owner_key: str, *, random16: bytes | None = None
) -> str:
    """Encrypt ``message`` into DingTalk's base64 envelope (no newlines)."""
    key = aes_key_from_encoding_key(encoding_aes_key)
    prefix = _random16() if random16 is None else random16
    if len(prefix) != 16:
        raise ValueError("random16 must be exactly 16 bytes")
    body_msg = message.encode("utf-8")
    body = prefix + struct.pack(">I", len(body_msg)) + body_msg + owner_key.encode("utf-8")
    pad = _BLOCK - len(body) % _BLOCK
    body += bytes([pad]) * pad
    encryptor = _cipher(key).encryptor()
    return base64.b64encode(encryptor.update(body) + encryptor.finalize()).decode("ascii")


def _b64_ciphertext(encrypt_b64: str) -> bytes:
    compact = "".join(encrypt_b64.split())  # the official Python sample emits newlines
    try:
        raw = base64.b64decode(compact.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise BadEnvelope("encrypt is not base64") from exc
    if not raw or len(raw) % 16:
        raise BadEnvelope(f"ciphertext length {len(raw)} is not a positive multiple of 16")
    return raw


def _unpad(plain: bytes) -> bytes:
    pad = plain[-1]
    if not 1 <= pad <= _BLOCK or pad > len(plain) or plain[-pad:] != bytes([pad]) * pad:
        raise BadPadding(f"bad padding byte {pad}")
    return plain[:-pad]


def decrypt(encrypt_b64: str, encoding_aes_key: str, owner_key: str) -> str:
    """Decrypt a DingTalk envelope; raise a :class:`BadEnvelope` subclass when it is not valid."""
    key = aes_key_from_encoding_key(encoding_aes_key)
    raw = _b64_ciphertext(encrypt_b64)
    decryptor = _cipher(key).decryptor()
    body = _unpad(decryptor.update(raw) + decryptor.finalize())
    if len(body) < 20:
        raise BadLength("plaintext shorter than its 20-byte header")
    (length,) = struct.unpack(">I", body[16:20])
    if 20 + length > len(body):
        raise BadLength(f"length field {length} overruns the plaintext")
    msg, tail = body[20 : 20 + length], body[20 + length :]
    try:
        text, owner = msg.decode("utf-8"), tail.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadEncoding("decrypted message is not UTF-8") from exc
    if not hmac.compare_digest(owner.encode("utf-8"), owner_key.encode("utf-8")):
        raise OwnerKeyMismatch("owner key in the envelope is not the expected one")
    return text


def reply_success(
    token: str,
    encoding_aes_key: str,
    owner_key: str,
    *,
    timestamp: str | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """The encrypted ``success`` answer DingTalk expects from a callback receiver."""
    sealed = seal("success", token, encoding_aes_key, owner_key, timestamp=timestamp, nonce=nonce)
    return {
        "msg_signature": sealed["signature"],
        "timeStamp": sealed["timestamp"],
        "nonce": sealed["nonce"],
        "encrypt": sealed["encrypt"],
    }


def open_callback(
    token: str,
    encoding_aes_key: str,
    owner_key: str,
    *,
    signature: str,
    timestamp: str,
    nonce: str,
    encrypt: str,
) -> str:
    """Verify the signature of a pushed envelope, then decrypt it to its JSON text."""
    verify_signature(token, timestamp, nonce, encrypt, signature)
    return decrypt(encrypt, encoding_aes_key, owner_key)


def seal(
    message: str,
    token: str,
    encoding_aes_key: str,
    owner_key: str,
    *,
    timestamp: str | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Encrypt and sign ``message`` as a push: ``{"signature","timestamp","nonce","encrypt"}``."""
    ts = str(int(time.time() * 1000)) if timestamp is None else timestamp
    nn = _random16().decode("ascii") if nonce is None else nonce
    enc = encrypt(message, encoding_aes_key, owner_key)
    return {"signature": _sha1(token, ts, nn, enc), "timestamp": ts, "nonce": nn, "encrypt": enc}
