"""The demo's made-up DingTalk organisation: sandbox seed and syncd config directory.

Fresh credentials every run. The config directory is a real one (``syncd.yaml`` and
``tenants/demo.yaml``), loaded with :func:`syncd.config.load_config` like any other, so
``syncd check --config WORKDIR/config`` works on it while the demo runs.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syncd_lab.sandbox.seed import Seed, seed_from_data
from syncd_lab.stack import config

TENANT = "demo"
BINDING = "alice-work"
APP_KEY = "dingdemo01"
CORP_ID = "dingcorpdemo"
ORGANIZER, ATTENDEE = "u-alice", "u-bob"
USERS = (
    {"union_id": ORGANIZER, "name": "Alice", "email": "alice@demo.example"},
    {"union_id": ATTENDEE, "name": "Bob", "email": "bob@demo.example"},
)
CALDAV_USER = "alice"
CALENDAR_PATH = "/alice/work/"
POLL_INTERVAL = "2s"  # the binding's CalDAV poll interval: short for a snappy demo

_HEADER = "# Written by `syncd demo` for this run only (fresh throwaway credentials inline).\n"


@dataclass(frozen=True)
class Credentials:
    """The demo app's secrets, shared by the sandbox seed and the tenant file."""

    app_secret: str
    callback_token: str
    aes_key: str  # the 43-character EncodingAESKey

    @classmethod
    def fresh(cls) -> Credentials:
        """New random credentials."""
        aes_key = base64.b64encode(secrets.token_bytes(32)).decode().rstrip("=")
        return cls(secrets.token_urlsafe(24), secrets.token_urlsafe(12), aes_key)


def sandbox_seed(creds: Credentials) -> Seed:
    """One app (no callback URL yet: registered once the webhook listens) and two users."""
    return seed_from_data(
        {
            "apps": [
                {
                    "app_key": APP_KEY,
                    "app_secret": creds.app_secret,
                    "corp_id": CORP_ID,
                    "callback": {"token": creds.callback_token, "aes_key": creds.aes_key},
                }
            ],
            "users": list(USERS),
        },
        source="<demo seed>",
    )


def _tenant(creds: Credentials, sandbox_url: str, calendar_url: str) -> dict[str, Any]:
    app = config.dingtalk(
        sandbox_url, APP_KEY, creds.app_secret, token=creds.callback_token, aes_key=creds.aes_key
    )
    work = config.binding(
        BINDING,
        ORGANIZER,
        calendar_url,
        auth=(CALDAV_USER, "demo"),
        direction="both",
        conflict="newest",
        poll_interval=POLL_INTERVAL,
    )
    users = [(u["union_id"], u["email"]) for u in USERS]
    return config.tenant(TENANT, app, [work], directory=users)


def write_config(
    root: Path, creds: Credentials, *, redis_url: str, listen: str, sandbox_url: str, calendar: str
) -> Path:
    """Write ``root/syncd.yaml`` and ``root/tenants/demo.yaml``; returns ``root``."""
    settings = {
        "redis_url": redis_url,
        "listen": listen,
        "log": {"format": "console", "level": "warning"},
    }
    tenants = [_tenant(creds, sandbox_url, calendar)]
    return config.write_config_dir(root, settings, tenants, header=_HEADER)
