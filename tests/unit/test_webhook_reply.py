"""The sealed ``success`` reply cache: valid replies, kept per tenant and credentials for
at most ``reuse_s``, re-sealed on a credentials change or when the clock goes back."""

from __future__ import annotations

import json

import pytest

from syncd import crypto
from syncd.errors import BadSignature, OwnerKeyMismatch
from syncd.webhook.reply import REUSE_S, Credentials, ReplyCache

ACME: Credentials = ("tok-acme", "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7", "dingacme")
GLOBEX: Credentials = ("tok-globex", "a" * 43, "dingglobex")
NOW = 1_800_000_000.25


def _opened(body: bytes, credentials: Credentials) -> tuple[dict[str, str], str]:
    """The reply as DingTalk reads it: signature verified, then decrypted."""
    reply = json.loads(body)
    token, aes_key, owner = credentials
    text = crypto.open_callback(
        token,
        aes_key,
        owner,
        signature=reply["msg_signature"],
        timestamp=reply["timeStamp"],
        nonce=reply["nonce"],
        encrypt=reply["encrypt"],
    )
    return reply, text


def test_reply_is_signed_success_stamped_now() -> None:
    """The body verifies and decrypts to 'success' with the tenant's keys; its timeStamp
    is the sealing time in ms."""
    reply, text = _opened(ReplyCache().body("acme", ACME, NOW), ACME)
    assert text == "success"
    assert set(reply) == {"msg_signature", "timeStamp", "nonce", "encrypt"}
    assert reply["timeStamp"] == str(int(NOW * 1000))


def test_same_tenant_within_reuse_window_gets_the_same_reply() -> None:
    """Within reuse_s the sealed body is answered again; at reuse_s a new one is sealed."""
    cache = ReplyCache()
    first = cache.body("acme", ACME, NOW)
    assert cache.body("acme", ACME, NOW + REUSE_S * 0.99) is first
    later = cache.body("acme", ACME, NOW + REUSE_S)
    assert later != first
    reply, text = _opened(later, ACME)
    assert text == "success"
    assert reply["timeStamp"] == str(int((NOW + REUSE_S) * 1000))


def test_clock_going_back_seals_a_new_reply() -> None:
    """A wall clock stepped back never answers with a reply stamped in the future."""
    cache = ReplyCache()
    first = cache.body("acme", ACME, NOW)
    earlier = cache.body("acme", ACME, NOW - 0.5)
    assert earlier != first
    assert json.loads(earlier)["timeStamp"] == str(int((NOW - 0.5) * 1000))


def test_each_tenant_gets_a_reply_sealed_with_its_own_keys() -> None:
    """Tenants never share a reply: globex's opens with globex's keys, not with acme's."""
    cache = ReplyCache()
    acme = cache.body("acme", ACME, NOW)
    globex = cache.body("globex", GLOBEX, NOW)
    assert _opened(globex, GLOBEX)[1] == "success"
    with pytest.raises(BadSignature):
        _opened(globex, ACME)
    assert cache.body("acme", ACME, NOW) is acme  # globex's entry did not evict acme's


def test_changed_credentials_seal_a_new_reply_at_once() -> None:
    """A config reload with a new token or key is answered with the new keys immediately."""
    cache = ReplyCache()
    cache.body("acme", ACME, NOW)
    rotated: Credentials = (ACME[0], GLOBEX[1], ACME[2])
    body = cache.body("acme", rotated, NOW + 0.1)
    assert _opened(body, rotated)[1] == "success"
    other_owner: Credentials = (ACME[0], ACME[1], "dingother")
    with pytest.raises(OwnerKeyMismatch):
        _opened(cache.body("acme", other_owner, NOW + 0.2), ACME)
