"""Typed application keys shared by the webhook's factory and handlers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from arq.connections import ArqRedis

    from syncd.config import Config
    from syncd.config.live import LiveConfig
    from syncd.webhook.reply import ReplyCache

CONFIG_KEY: web.AppKey[LiveConfig] = web.AppKey("config")
"""The process's configuration; reloads swap ``.current`` (:mod:`syncd.config.live`)."""


def config_of(app: web.Application) -> Config:
    """The configuration the app serves with right now."""
    return app[CONFIG_KEY].current


ARQ_KEY: web.AppKey[ArqRedis] = web.AppKey("arq")


@dataclass
class WebState:
    """Where the webhook process is in its life.

    ``draining``: a shutdown began (``/readyz`` answers 503 so load balancers move on;
    callbacks already received are still queued). ``closed``: the Redis client is
    closing, so a callback can no longer be queued and is answered 503, never success.
    """

    draining: bool = False
    closed: bool = False


STATE_KEY: web.AppKey[WebState] = web.AppKey("state", WebState)

REPLY_KEY: web.AppKey[ReplyCache] = web.AppKey("reply")
"""The sealed ``success`` replies, per tenant (:mod:`syncd.webhook.reply`)."""
