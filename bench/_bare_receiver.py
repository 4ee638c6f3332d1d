"""The webhook benchmark's baselines: bare aiohttp receivers.

``python -m bench._bare_receiver PORT`` serves on 127.0.0.1:

* ``POST /callbacks/acme`` — crypto only: verifies the signature, decrypts, parses the
  JSON and answers the encrypted ``success`` (sealed per push), with the same
  ``syncd.crypto`` functions and test credentials as the benchmark, and no Redis, dedupe,
  queueing or logging. The ratio of syncd's webhook to this one is what dedupe,
  enqueueing and logging cost.
* ``POST /callbacks/plain`` — a bare 200 handler: reads the body, answers ``{}``. The
  ratio to this one is issue 13's target 5 (and what the crypto itself costs).

``GET /readyz`` answers 200.
"""

from __future__ import annotations

import json
import sys

from aiohttp import web

from syncd import crypto
from tests.fixtures.sandbox import AES_KEY, APP_KEY, CALLBACK_TOKEN


async def callback(request: web.Request) -> web.Response:
    """Verify, decrypt, parse, answer ``success``."""
    q = request.query
    body = await request.json()
    text = crypto.open_callback(
        CALLBACK_TOKEN,
        AES_KEY,
        APP_KEY,
        signature=q["signature"],
        timestamp=q["timestamp"],
        nonce=q["nonce"],
        encrypt=body["encrypt"],
    )
    json.loads(text)
    return web.json_response(crypto.reply_success(CALLBACK_TOKEN, AES_KEY, APP_KEY))


async def plain(request: web.Request) -> web.Response:
    """Read the body, answer 200."""
    await request.read()
    return web.json_response({})


async def ready(request: web.Request) -> web.Response:
    """Always ready."""
    return web.json_response({"status": "ready"})


def main(port: int) -> None:
    """Serve until killed."""
    app = web.Application()
    app.router.add_post("/callbacks/acme", callback)
    app.router.add_post("/callbacks/plain", plain)
    app.router.add_get("/readyz", ready)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


if __name__ == "__main__":
    main(int(sys.argv[1]))
