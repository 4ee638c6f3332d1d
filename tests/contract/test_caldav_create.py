"""``caldav.create``: the client makes a missing collection once and leaves one alone."""

from __future__ import annotations

import uuid

import pytest

from syncd.adapters.caldav.client import CalDAVClient
from syncd.errors import AuthFailed
from tests.fixtures.caldav_servers import CalDAVServer, http


async def test_ensure_collection_makes_a_missing_one_once(radicale_server: CalDAVServer) -> None:
    server = radicale_server
    url = f"{server.base_url}{server.home_path_for(server.username)}made-{uuid.uuid4().hex[:8]}/"
    auth = (server.username, server.password)
    try:
        async with CalDAVClient(url, *auth) as client:
            assert await client.ensure_collection() is True
            assert await client.ensure_collection() is False
            listed = await client.sync(None)
        assert listed.items == ()
    finally:
        http(url, "DELETE", auth=auth)


async def test_ensure_collection_with_bad_credentials_fails(radicale_server: CalDAVServer) -> None:
    server = radicale_server
    url = f"{server.base_url}{server.home_path_for(server.username)}nope-{uuid.uuid4().hex[:8]}/"
    async with CalDAVClient(url, server.username, "wrong") as client:
        with pytest.raises(AuthFailed):
            await client.ensure_collection()
