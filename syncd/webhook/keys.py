"""Typed application keys shared by the webhook's factory and handlers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from arq.connections import ArqRedis

    from syncd.config import Config

CONFIG_KEY: web.AppKey[Config] = web.AppKey("config")
ARQ_KEY: web.AppKey[ArqRedis] = web.AppKey("arq")
