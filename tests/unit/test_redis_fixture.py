"""The redis fixture starts a real server."""

import redis.asyncio as aredis


async def test_redis_fixture_serves(redis_client: aredis.Redis) -> None:
    """A value written to the fixture's redis can be read back."""
    await redis_client.set("k", "v")
    assert await redis_client.get("k") == b"v"
