"""The :class:`Sandbox` object: state, callbacks, faults and counters of one fake DingTalk."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import structlog

from syncd_lab.sandbox.callbacks import Pusher, Target, calendar_id_of, payload
from syncd_lab.sandbox.faults import FaultInjector, Faults
from syncd_lab.sandbox.render import render
from syncd_lab.sandbox.seed import AppSeed, Seed
from syncd_lab.sandbox.state import State
from syncd_lab.sandbox.stream import StreamHub
from syncd_lab.sandbox.times import now_ms
from syncd_lab.sandbox.writer import Change

log = structlog.get_logger(__name__)
SAVE_DELAY = 0.2  # seconds between a change and the state file write


def _target_of(app: AppSeed) -> Target | None:
    cb = app.callback
    if cb is None or not cb.url:
        return None
    owner = cb.owner_key or app.app_key
    return Target(app.app_key, app.corp_id, cb.url, cb.token, cb.aes_key, owner)


class Sandbox:
    """One fake DingTalk organisation: reachable from the aiohttp app as ``app[SANDBOX_KEY]``."""

    def __init__(
        self,
        seed: Seed,
        *,
        state_file: Path | None = None,
        token_ttl: int = 7200,
        camel_case: bool = False,
        retry_delays: tuple[float, ...] = (0.2, 0.5, 1.0),
        callback_timeout: float = 1.5,
        random_seed: int = 0,
        stream_ack_timeout: float = 5.0,
    ) -> None:
        self.seed = seed
        self.state_file = state_file
        self.state = State.load(state_file) if state_file else State()
        self.token_ttl = token_ttl
        self.camel_case = camel_case
        self.faults = FaultInjector(random_seed)
        self.pusher = Pusher(
            retry_delays=retry_delays,
            timeout=callback_timeout,
            rng=random.Random(random_seed + 1),
            on_failed=self._store_failed,
        )
        self.stream = StreamHub(ack_timeout=stream_ack_timeout, rng=random.Random(random_seed + 2))
        self.targets: dict[str, Target] = {}
        for app in seed.apps:
            target = _target_of(app)
            if target is not None:
                self.targets[app.app_key] = target
        self.requests: Counter[str] = Counter()
        self._save_handle: asyncio.TimerHandle | None = None
        self.checks = {"ok": 0, "failed": 0}

    # --- tokens ------------------------------------------------------------------------

    def issue_token(self, app_key: str) -> str:
        """A fresh access token for ``app_key`` (what the token endpoint hands out)."""
        token = self.state.issue_access_token(app_key, self.token_ttl)
        self.persist()
        return token

    def expire_access_tokens(self) -> None:
        """Make every issued access token invalid (``InvalidAuthentication`` from now on)."""
        self.state.access_tokens.clear()
        self.persist()

    def expire_sync_tokens(self) -> None:
        """Make every issued syncToken and nextToken stale (clients must re-list)."""
        self.state.sync_tokens.clear()
        self.state.page_tokens.clear()
        self.persist()

    # --- callbacks ---------------------------------------------------------------------

    def _app(self, app_key: str) -> AppSeed:
        app = self.seed.app(app_key)
        if app is None:
            raise KeyError(f"unknown app {app_key!r}")
        return app

    def set_callback(
        self,
        app_key: str,
        url: str | None,
        token: str | None = None,
        aes_key: str | None = None,
        *,
        check: bool = False,
    ) -> None:
        """(Re)register ``app_key``'s callback URL; ``None`` unregisters.

        ``token``/``aes_key`` default to the seeded ones. With ``check`` a ``check_url`` push
        is sent in the background (see :meth:`drain`); the URL stays registered either way.
        """
        app = self._app(app_key)
        if url is None:
            self.targets.pop(app_key, None)
            return
        seeded = app.callback
        token = token or (seeded.token if seeded else None)
        aes_key = aes_key or (seeded.aes_key if seeded else None)
        if not token or not aes_key:
            raise ValueError("token and aes_key are required when the seed has none")
        owner = (seeded.owner_key if seeded else None) or app_key
        self.targets[app_key] = Target(app_key, app.corp_id, url, token, aes_key, owner)
        if check:
            self.pusher.spawn(self.check_url(app_key))

    async def check_url(self, app_key: str) -> bool:
        """Send the ``check_url`` push (one try, no retry); True if answered with success."""
        target = self.targets[app_key]
        ok = await self.pusher.attempt(target, '{"EventType":"check_url"}')
        self.checks["ok" if ok else "failed"] += 1
        return ok

    async def register_callback(
        self, app_key: str, url: str, token: str | None = None, aes_key: str | None = None
    ) -> bool:
        """Like the developer console: register, verify with ``check_url``, keep only if OK."""
        previous = self.targets.get(app_key)
        self.set_callback(app_key, url, token, aes_key)
        if await self.check_url(app_key):
            return True
        if previous is None:
            self.targets.pop(app_key, None)
        else:
            self.targets[app_key] = previous
        return False

    def notify(self, changes: list[Change]) -> None:
        """Push each change to every app: over Stream or to its callback URL (background)."""
        for change in changes:
            for app in self.seed.apps:
                if app.delivery == "stream":
                    calendar = calendar_id_of(change.organizer)
                    self.stream.publish(app.app_key, app.corp_id, change, calendar)
            for target in self.targets.values():
                if self._app(target.app_key).delivery == "stream":
                    continue
                body = payload(change, target, now_ms(), camel=self.camel_case)
                self.pusher.spawn(self.pusher.deliver(target, body))

    def _store_failed(self, target: Target, body: dict[str, Any]) -> None:
        item = {
            "callBackTag": body["EventType"],
            "callBackData": json.dumps(body, ensure_ascii=False, separators=(",", ":")),
            "corpId": target.corp_id,
            "eventTime": body["EventTime"],
        }
        self.state.failed.setdefault(target.app_key, []).append(item)
        self.persist()

    async def drain(self) -> None:
        """Wait until every pending callback push (retries included) has finished."""
        await self.pusher.drain()
        await asyncio.sleep(0)

    # --- inspection and control --------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Request counts per SDK action name, and callback counters."""
        callbacks = dict(
            self.pusher.counts,
            pending=self.pusher.pending(),
            checks_ok=self.checks["ok"],
            checks_failed=self.checks["failed"],
        )
        return {
            "requests": dict(self.requests),
            "callbacks": callbacks,
            "stream": self.stream.stats(),
        }

    def reset(self) -> None:
        """Empty every calendar and counter and switch faults off (tokens stay valid)."""
        self.state.clear_calendars()
        self.state.failed.clear()
        self.stream.reset()
        self.requests.clear()
        self.pusher.counts = dict.fromkeys(self.pusher.counts, 0)
        self.checks = {"ok": 0, "failed": 0}
        self.set_faults(**Faults().as_dict())
        self.persist()

    def set_faults(self, **settings: Any) -> Faults:
        """Change fault settings (see :mod:`syncd_lab.sandbox.faults`); returns the new ones."""
        faults = self.faults.set(**settings)
        self.pusher.drop_rate = faults.callback_drop_rate
        return faults

    def events_of(self, union_id: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Every stored event in ``union_id``'s calendar, as ListEvents would render it."""
        corp = self.seed.apps[0].corp_id if self.seed.apps else ""
        out = []
        for ev in self.state.events.values():
            gone = ev.status == "cancelled" or ev.gone_for(union_id)
            if (ev.visible_to(union_id) or ev.gone_for(union_id)) and (include_deleted or not gone):
                out.append(
                    render(
                        ev,
                        union_id,
                        self.seed,
                        corp_id=corp,
                        shape="list",
                        cancelled=ev.gone_for(union_id),
                    )
                )
        return out

    def dump(self) -> dict[str, Any]:
        """The whole state as JSON data (``GET /_sandbox/state``)."""
        data: dict[str, Any] = json.loads(self.state.to_json())
        data["callback_targets"] = {k: v.url for k, v in self.targets.items()}
        data["faults"] = self.faults.faults.as_dict()
        return data

    def persist(self) -> None:
        """Save the state file (if any) soon; bursts of changes are written once."""
        if self.state_file is None or self._save_handle is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._save()
            return
        self._save_handle = loop.call_later(SAVE_DELAY, self._save)

    def _save(self) -> None:
        self._save_handle = None
        if self.state_file is not None:
            self.state.save(self.state_file)

    async def close(self) -> None:
        """Stop pending pushes and write the state file now."""
        await self.pusher.close()
        await self.stream.close()
        if self._save_handle is not None:
            self._save_handle.cancel()
        self._save()
