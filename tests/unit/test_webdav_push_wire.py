"""WebDAV-Push pieces that need no server: settings, the register document, the answers."""

from __future__ import annotations

import base64
import email.utils

import pytest
from lxml import etree
from pydantic import ValidationError

from syncd.adapters.caldav.push import NS, expires_of, offers_web_push, register_body
from syncd.config import Settings
from syncd.model import BindingRef
from syncd.queue import QUIET_REASONS
from syncd.webhook.push import REASON
from syncd.worker.push import push_resource


def _b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_settings_default_off_and_parse_durations() -> None:
    assert Settings().webdav_push is None
    push = Settings.model_validate(
        {"webdav_push": {"public_url": "https://syncd.example/", "lifetime": "2d"}}
    ).webdav_push
    assert push is not None
    assert push.public_url == "https://syncd.example"
    assert push.lifetime == 2 * 86400


@pytest.mark.parametrize(
    "value", [{"public_url": "ftp://x"}, {"public_url": "https://x", "lifetime": "10s"}, {}]
)
def test_settings_refuse_bad_values(value: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        Settings.model_validate({"webdav_push": value})


def test_register_body_names_the_resource_keys_trigger_and_expiry() -> None:
    body = register_body("https://syncd.example/webdav-push/a/b/t?x=<1>", 1_900_000_000.0)
    root = etree.fromstring(body.encode())
    wp = root.find(f"{{{NS}}}subscription/{{{NS}}}web-push-subscription")
    assert wp is not None
    assert wp.findtext(f"{{{NS}}}push-resource") == "https://syncd.example/webdav-push/a/b/t?x=<1>"
    assert wp.findtext(f"{{{NS}}}content-encoding") == "aes128gcm"
    key = _b64(wp.findtext(f"{{{NS}}}subscription-public-key") or "")
    assert len(key) == 65  # an uncompressed P-256 point
    assert key[0] == 4
    assert len(_b64(wp.findtext(f"{{{NS}}}auth-secret") or "")) == 16
    assert root.find(f"{{{NS}}}trigger/{{{NS}}}content-update") is not None
    expires = email.utils.parsedate_to_datetime(root.findtext(f"{{{NS}}}expires") or "")
    assert expires.timestamp() == 1_900_000_000.0
    assert register_body("https://x", 0) != register_body("https://x", 0)  # fresh keys


def test_offers_web_push_reads_the_transports_property() -> None:
    offered = etree.fromstring(
        f'<m xmlns:P="{NS}"><P:transports><P:web-push><P:vapid-public-key/></P:web-push>'
        "</P:transports></m>".encode()
    )
    missing = etree.fromstring(f'<m xmlns:P="{NS}"><P:transports/></m>'.encode())
    assert offers_web_push(offered)
    assert not offers_web_push(missing)
    assert not offers_web_push(None)


def test_expires_header_else_the_asked_time() -> None:
    header = email.utils.formatdate(1_900_000_000.0, usegmt=True)
    assert expires_of({"Expires": header}, 5.0) == 1_900_000_000.0
    assert expires_of({}, 5.0) == 5.0
    assert expires_of({"Expires": "next tuesday"}, 5.0) == 5.0


def test_push_resource_quotes_ids() -> None:
    url = push_resource("https://s.example", BindingRef("a/b", "c d"), "tok")
    assert url == "https://s.example/webdav-push/a%2Fb/c%20d/tok"


def test_a_caldav_push_does_not_list_dingtalk_by_itself() -> None:
    assert REASON in QUIET_REASONS
