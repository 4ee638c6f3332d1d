"""DingTalk callback crypto: the official vector, round trips, and rejection of bad envelopes."""

from __future__ import annotations

import base64
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd import crypto
from syncd.errors import (
    BadEncoding,
    BadEnvelope,
    BadLength,
    BadPadding,
    BadSignature,
    CallbackError,
    ConfigError,
    OwnerKeyMismatch,
)

# The official self-test vector of open-dingtalk/DingTalk-Callback-Crypto.
TOKEN = "mryue"
AES_KEY = "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7"
OWNER = "ding6ccabc44d2c8d38b"
TIMESTAMP = "1608001896814"
NONCE = "WL4PK6yA"
ENCRYPT = (
    "0vJiX6vliEpwG3U45CtXqi+m8PXbQRARJ8p8BbDuD1EMTDf0jKpQ79QS93qEk7XHpP6u+oTTrd15NRPvNvmBKyD"
    "CYxxOK+HZeKju4yhELOFchzNukR+t8SB/qk4ROMu3"
)
SIGNATURE = "03044561471240d4a14bb09372dfcfd4fd0e40cb"


def _raw_envelope(plain: bytes, key_text: str = AES_KEY) -> str:
    """Encrypt arbitrary plaintext bytes (already block-aligned) the way DingTalk would."""
    key = crypto.aes_key_from_encoding_key(key_text)
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


def _pad32(body: bytes) -> bytes:
    pad = 32 - len(body) % 32
    return body + bytes([pad]) * pad


def test_official_vector_signature() -> None:
    """The signature of the official vector is reproduced exactly."""
    assert crypto.signature(TOKEN, TIMESTAMP, NONCE, ENCRYPT) == SIGNATURE


def test_official_vector_decrypts_to_check_url() -> None:
    """The official ciphertext decrypts to the check_url event under the official owner key."""
    assert crypto.decrypt(ENCRYPT, AES_KEY, OWNER) == '{"EventType":"check_url"}'


def test_open_callback_verifies_and_decrypts_official_vector() -> None:
    """open_callback accepts the official push and returns its plaintext."""
    text = crypto.open_callback(
        TOKEN,
        AES_KEY,
        OWNER,
        signature=SIGNATURE,
        timestamp=TIMESTAMP,
        nonce=NONCE,
        encrypt=ENCRYPT,
    )
    assert text == '{"EventType":"check_url"}'


def test_official_encrypt_is_reproducible_with_its_random_prefix() -> None:
    """Encrypting the vector's plaintext with the vector's random prefix gives its ciphertext."""
    key = crypto.aes_key_from_encoding_key(AES_KEY)
    dec = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    prefix = (dec.update(base64.b64decode(ENCRYPT)) + dec.finalize())[:16]
    again = crypto.encrypt('{"EventType":"check_url"}', AES_KEY, OWNER, random16=prefix)
    assert again == ENCRYPT


def test_verify_signature_rejects_wrong_token() -> None:
    """A signature made with another token raises BadSignature."""
    with pytest.raises(BadSignature):
        crypto.verify_signature("other", TIMESTAMP, NONCE, ENCRYPT, SIGNATURE)


def test_verify_signature_accepts_uppercase_hex() -> None:
    """Hex case does not matter for the signature comparison."""
    crypto.verify_signature(TOKEN, TIMESTAMP, NONCE, ENCRYPT, SIGNATURE.upper())


def test_chinese_round_trip_uses_utf8_byte_length() -> None:
    """Non-ASCII text survives a round trip (length field counts UTF-8 bytes)."""
    text = '{"summary":"周会：讨论日程同步","who":"张三"}'
    envelope = crypto.encrypt(text, AES_KEY, OWNER)
    assert crypto.decrypt(envelope, AES_KEY, OWNER) == text
    assert "\n" not in envelope


def test_decrypt_tolerates_newlines_in_base64() -> None:
    """Base64 wrapped with newlines (official Python sample) still decrypts."""
    wrapped = "\n".join(ENCRYPT[i : i + 76] for i in range(0, len(ENCRYPT), 76)) + "\n"
    assert crypto.decrypt(wrapped, AES_KEY, OWNER) == '{"EventType":"check_url"}'


def test_reply_success_is_a_valid_signed_envelope() -> None:
    """reply_success signs over timeStamp/nonce/encrypt and decrypts to 'success'."""
    reply = crypto.reply_success(TOKEN, AES_KEY, OWNER, timestamp="123", nonce="abc")
    assert set(reply) == {"msg_signature", "timeStamp", "nonce", "encrypt"}
    assert reply["timeStamp"] == "123"
    assert reply["nonce"] == "abc"
    crypto.verify_signature(TOKEN, "123", "abc", reply["encrypt"], reply["msg_signature"])
    assert crypto.decrypt(reply["encrypt"], AES_KEY, OWNER) == "success"


def test_seal_then_open_callback() -> None:
    """A sealed push opens with the same token, key and owner key."""
    sealed = crypto.seal('{"a":1}', TOKEN, AES_KEY, OWNER)
    assert crypto.open_callback(TOKEN, AES_KEY, OWNER, **sealed) == '{"a":1}'


@pytest.mark.parametrize("bad", ["", "short", AES_KEY + "A", "!" * 43])
def test_bad_encoding_aes_key_is_config_error(bad: str) -> None:
    """A key that is not 43 base64 characters raises ConfigError."""
    with pytest.raises(ConfigError):
        crypto.aes_key_from_encoding_key(bad)


def test_not_base64_is_bad_envelope() -> None:
    """Garbage that is not base64 raises BadEnvelope."""
    with pytest.raises(BadEnvelope):
        crypto.decrypt("@@not base64@@", AES_KEY, OWNER)


def test_ciphertext_not_block_multiple_is_bad_envelope() -> None:
    """Ciphertext whose length is not a multiple of 16 raises BadEnvelope."""
    with pytest.raises(BadEnvelope):
        crypto.decrypt(base64.b64encode(b"x" * 20).decode(), AES_KEY, OWNER)


def test_empty_ciphertext_is_bad_envelope() -> None:
    """An empty encrypt field raises BadEnvelope."""
    with pytest.raises(BadEnvelope):
        crypto.decrypt("", AES_KEY, OWNER)


@pytest.mark.parametrize("last", [0, 33, 200])
def test_pad_byte_out_of_range_is_bad_padding(last: int) -> None:
    """A final pad byte of 0 or above 32 raises BadPadding."""
    plain = b"r" * 16 + struct.pack(">I", 2) + b"hi" + OWNER.encode()
    plain += b"\x00" * (63 - len(plain)) + bytes([last])
    with pytest.raises(BadPadding):
        crypto.decrypt(_raw_envelope(plain), AES_KEY, OWNER)


def test_inconsistent_pad_bytes_is_bad_padding() -> None:
    """Pad bytes that disagree with the final pad length raise BadPadding."""
    body = b"r" * 16 + struct.pack(">I", 2) + b"hi" + OWNER.encode()
    padded = bytearray(_pad32(body))
    padded[-2] ^= 0x01
    with pytest.raises(BadPadding):
        crypto.decrypt(_raw_envelope(bytes(padded)), AES_KEY, OWNER)


def test_length_overrun_is_bad_length() -> None:
    """A length field pointing past the plaintext raises BadLength."""
    body = b"r" * 16 + struct.pack(">I", 10_000) + b"hi" + OWNER.encode()
    with pytest.raises(BadLength):
        crypto.decrypt(_raw_envelope(_pad32(body)), AES_KEY, OWNER)


def test_too_short_plaintext_is_bad_length() -> None:
    """A plaintext shorter than the 20-byte header raises BadLength."""
    with pytest.raises(BadLength):
        crypto.decrypt(_raw_envelope(_pad32(b"r" * 10)), AES_KEY, OWNER)


def test_other_owner_key_is_owner_key_mismatch() -> None:
    """An envelope for another app raises OwnerKeyMismatch."""
    envelope = crypto.encrypt("hello", AES_KEY, "ding-other")
    with pytest.raises(OwnerKeyMismatch):
        crypto.decrypt(envelope, AES_KEY, OWNER)


def test_non_utf8_message_is_bad_encoding() -> None:
    """A message that is not UTF-8 raises BadEncoding."""
    body = b"r" * 16 + struct.pack(">I", 2) + b"\xff\xfe" + OWNER.encode()
    with pytest.raises(BadEncoding):
        crypto.decrypt(_raw_envelope(_pad32(body)), AES_KEY, OWNER)


def test_wrong_aes_key_is_rejected() -> None:
    """Decrypting with another EncodingAESKey fails with a BadEnvelope subclass."""
    other = "A" * 43
    with pytest.raises(BadEnvelope):
        crypto.decrypt(ENCRYPT, other, OWNER)


@settings(max_examples=200, deadline=None)
@given(text=st.text(), owner=st.text(min_size=1, max_size=40))
def test_round_trip_any_text(text: str, owner: str) -> None:
    """decrypt(encrypt(x)) == x for arbitrary Unicode text and owner keys."""
    assert crypto.decrypt(crypto.encrypt(text, AES_KEY, owner), AES_KEY, owner) == text


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_mutated_signed_envelope_is_always_rejected(data: st.DataObject) -> None:
    """Any change to a signed push (encrypt, nonce, timestamp) raises a CallbackError."""
    sealed = crypto.seal('{"EventType":"calendar_event_change"}', TOKEN, AES_KEY, OWNER)
    field = data.draw(st.sampled_from(["encrypt", "nonce", "timestamp"]))
    value = sealed[field]
    mutated = data.draw(
        st.one_of(
            st.integers(0, len(value) - 1).map(lambda i: value[:i]),
            st.tuples(st.integers(0, len(value) - 1), st.characters()).map(
                lambda t: value[: t[0]] + t[1] + value[t[0] + 1 :]
            ),
        ).filter(lambda v: v != value)
    )
    with pytest.raises(CallbackError):
        crypto.open_callback(TOKEN, AES_KEY, OWNER, **{**sealed, field: mutated})


@settings(max_examples=500, deadline=None)
@given(data=st.data())
def test_decrypt_of_mutated_ciphertext_raises_only_callback_errors(data: st.DataObject) -> None:
    """Byte mutations/truncations of a ciphertext never raise anything but CallbackError."""
    raw = bytearray(base64.b64decode(crypto.encrypt("success", AES_KEY, OWNER)))
    cut = data.draw(st.integers(0, len(raw)))
    raw = raw[:cut]
    for _ in range(data.draw(st.integers(0, 3))):
        if raw:
            raw[data.draw(st.integers(0, len(raw) - 1))] = data.draw(st.integers(0, 255))
    try:
        result = crypto.decrypt(base64.b64encode(bytes(raw)).decode(), AES_KEY, OWNER)
    except CallbackError:
        return
    assert isinstance(result, str)  # CBC without a MAC can decrypt a changed block


@settings(max_examples=300, deadline=None)
@given(junk=st.text())
def test_decrypt_of_arbitrary_text_raises_only_callback_errors(junk: str) -> None:
    """Arbitrary strings as the encrypt field are rejected with a CallbackError."""
    with pytest.raises(CallbackError):
        crypto.decrypt(junk, AES_KEY, OWNER)


def test_derived_key_is_kept_but_a_malformed_key_fails_every_time() -> None:
    """The AES key of an EncodingAESKey is derived once; a malformed one is never cached
    as valid (ConfigError on every call), and another key derives its own."""
    assert crypto.aes_key_from_encoding_key(AES_KEY) is crypto.aes_key_from_encoding_key(AES_KEY)
    for _ in range(2):
        with pytest.raises(ConfigError):
            crypto.aes_key_from_encoding_key(AES_KEY[:-1] + "!")
    assert crypto.aes_key_from_encoding_key("a" * 43) != crypto.aes_key_from_encoding_key(AES_KEY)


def test_kept_cipher_encrypts_each_message_afresh() -> None:
    """One kept Cipher per key: two envelopes of the same text differ (fresh random prefix
    per call) and both still decrypt; nonces are 16 letters/digits and differ."""
    first, second = (crypto.encrypt("success", AES_KEY, OWNER) for _ in range(2))
    assert first != second
    assert crypto.decrypt(first, AES_KEY, OWNER) == crypto.decrypt(second, AES_KEY, OWNER)
    nonces = {crypto.seal("x", TOKEN, AES_KEY, OWNER)["nonce"] for _ in range(50)}
    assert len(nonces) == 50
    assert all(len(n) == 16 and n.isalnum() and n.isascii() for n in nonces)
