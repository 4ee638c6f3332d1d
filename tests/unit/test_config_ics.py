"""The ``ics:`` options of a binding: webcal URLs, credentials, identity, timeout cap."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from syncd.config import IcsSource, tenant_schema
from syncd.config._types import parse_duration


def ics(**options: Any) -> IcsSource:
    return IcsSource.model_validate({"url": "https://e.org/h.ics", **options})


def test_defaults() -> None:
    """refresh 1h, identity auto, timeout 60 s, no credentials."""
    feed = ics()
    assert (feed.refresh, feed.identity, feed.timeout) == (3600.0, "auto", 60.0)
    assert (feed.username, feed.password) == (None, None)


def test_webcal_is_read_as_https() -> None:
    """webcal:// (any case) becomes https://; http and https stay."""
    assert ics(url="webcal://e.org/h.ics").url == "https://e.org/h.ics"
    assert ics(url="WEBCAL://e.org/h.ics").url == "https://e.org/h.ics"
    assert ics(url="http://e.org/h.ics").url == "http://e.org/h.ics"


@pytest.mark.parametrize("identity", ["uid", "content", "auto"])
def test_identity_values(identity: str) -> None:
    assert ics(identity=identity).identity == identity


@pytest.mark.parametrize(
    "bad",
    [
        {"identity": "hash"},
        {"timeout": "61s"},
        {"timeout": "0s"},
        {"password": "pw"},  # a password without a username
        {"url": "ftp://e.org/h.ics"},
    ],
)
def test_invalid_options_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ics(**bad)


def test_credentials_and_short_timeout() -> None:
    """Basic credentials are kept (the password secret); a timeout below 60 s is honoured."""
    feed = ics(username="feed", password="s3cret", timeout="5s")
    assert feed.username == "feed"
    assert feed.password is not None
    assert feed.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(feed)
    assert feed.timeout == parse_duration("5s")


def test_schema_admits_webcal_urls() -> None:
    """`syncd schema` describes the feed URL as http, https or webcal."""
    defs = tenant_schema()["$defs"]
    assert defs["IcsSource"]["properties"]["url"]["pattern"] == "^(https?|webcal)://"
    assert set(defs["IcsSource"]["properties"]["identity"]["enum"]) == {"uid", "content", "auto"}
