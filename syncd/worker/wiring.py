"""Build the two sides and the policy of one binding from configuration.

Shared by the arq worker and ``syncd sync``: the only place that turns a configured
binding into adapters. Long-lived resources (the aiohttp session, Redis, the token cache)
are passed in, so one worker process shares them across all bindings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial

import aiohttp

from syncd.adapters.caldav.client import CalDAVClient
from syncd.adapters.caldav.side import CalDAVSide
from syncd.adapters.dingtalk.client import DingTalkClient
from syncd.adapters.dingtalk.side import DingTalkSide
from syncd.adapters.dingtalk.tokens import TokenCache
from syncd.adapters.ics.client import IcsClient
from syncd.adapters.ics.side import IcsSide
from syncd.config import Binding, Config, Tenant
from syncd.errors import ConfigError
from syncd.model import BindingRef
from syncd.store.ratelimit import RequestPace
from syncd.sync.policy import Policy
from syncd.sync.ports import CalendarSide, MappingStore
from syncd.sync.shaping import Filter, Shaping
from syncd.translate import Context, Directory, as_dingtalk_keeps

# Mapped hrefs a CalDAV side may ask the store for, to tell an incremental answer from a
# full listing (the client asks the server for a few of those the answer leaves out).
KNOWN_HREFS = 8


@dataclass(frozen=True)
class Wired:
    """Everything a reconcile of one binding needs."""

    ref: BindingRef
    dingtalk: CalendarSide
    other: CalendarSide
    policy: Policy
    concurrency: int  # the binding's ``concurrency``: writes in flight at once


def translation_context(tenant: Tenant, binding: Binding) -> Context:
    """The translation settings of a binding: its tenant's directory and zone, its user."""
    return Context(
        directory=Directory(tenant.directory_map()),
        user=binding.dingtalk_user,
        timezone=tenant.timezone,
    )


def policy_for(
    config: Config, binding: Binding, *, force_delete: bool = False, ctx: Context | None = None
) -> Policy:
    """The planner's policy for a binding (deletion threshold: binding, else process).

    With ``ctx`` (the binding's translation context) the policy knows what DingTalk keeps
    of a CalDAV event, so a lost mapping store re-pairs such copies exactly.
    """
    threshold = config.deletion_threshold(binding)
    bound = ctx.directory.email_of(ctx.user) if ctx is not None else None
    return Policy(
        direction=binding.direction,
        conflict=binding.conflict,
        max_deletions=threshold.max_count,
        max_deletion_ratio=threshold.max_ratio,
        force_delete=force_delete,
        dingtalk_keeps=partial(as_dingtalk_keeps, ctx=ctx) if ctx is not None else None,
        shaping=shaping_for(binding, bound),
    )


def shaping_for(binding: Binding, bound_email: str | None) -> Shaping:
    """The binding's filter and transforms (``mirror``, ``busy_title``, ``filter``,
    ``transform``); ``bound_email``: the bound user's address, for ``skip_declined``."""
    rules = binding.filter
    return Shaping(
        mirror_busy=binding.mirror == "busy",
        busy_title=binding.busy_title,
        summary_prefix=binding.transform.summary_prefix,
        filter=Filter.build(
            skip_declined=rules.skip_declined,
            skip_all_day=rules.skip_all_day,
            skip_private=rules.skip_private,
            skip_free=rules.skip_free,
            exclude_summary=rules.exclude_summary,
        ),
        bound_email=bound_email,
    )


def dingtalk_client(
    tenant: Tenant,
    session: aiohttp.ClientSession,
    tokens: TokenCache,
    pace: RequestPace | None = None,
) -> DingTalkClient:
    """A client for the tenant's DingTalk app, paced at its ``dingtalk.qps`` by ``pace``."""
    app = tenant.dingtalk
    return DingTalkClient(
        session,
        app.api_base,
        app.app_key,
        app.app_secret.get_secret_value(),
        tokens,
        pace=pace.for_app(app.app_key, app.qps) if pace is not None else None,
    )


def siblings(config: Config, ref: BindingRef) -> list[BindingRef]:
    """The other bindings (CalDAV or ICS) of the same tenant and DingTalk user as ``ref``.

    Their events stay out of ``ref``'s calendar, except for a ``to_caldav`` binding:
    that one mirrors the user's whole DingTalk calendar by definition (no siblings).
    """
    binding = config.binding(ref.tenant, ref.binding)
    if binding.direction == "to_caldav":
        return []
    same_user = config.user_bindings(ref.tenant, binding.dingtalk_user)
    return [BindingRef(ref.tenant, b) for b in same_user if b != ref.binding]


@asynccontextmanager
async def wire(
    config: Config,
    ref: BindingRef,
    session: aiohttp.ClientSession,
    tokens: TokenCache,
    *,
    force_delete: bool = False,
    pace: RequestPace | None = None,
    store: MappingStore | None = None,
) -> AsyncIterator[Wired]:
    """Open the sides of ``ref`` for one reconcile and close them afterwards.

    With ``store``, the CalDAV side may ask it for a few mapped hrefs (see
    :class:`CalDAVSide`): an incremental run then costs the same at any calendar size.
    """
    tenant = config.tenant(ref.tenant)
    binding = tenant.binding(ref.binding)
    ctx = translation_context(tenant, binding)
    dingtalk = DingTalkSide(
        dingtalk_client(tenant, session, tokens, pace),
        binding.dingtalk_user,
        ctx,
        window_days=binding.window.future_days,
        past_days=binding.window.past_days,
    )
    policy = policy_for(config, binding, force_delete=force_delete, ctx=ctx)
    if binding.caldav is not None:
        dav = binding.caldav
        password = dav.password.get_secret_value() if dav.password else None
        client = CalDAVClient(
            dav.url, dav.username, password, timeout=dav.timeout, create=dav.create
        )
        async with client:
            known = partial(store.some_hrefs, ref, KNOWN_HREFS) if store else None
            yield Wired(ref, dingtalk, CalDAVSide(client, ctx, known), policy, binding.concurrency)
        return
    if binding.ics is None:  # pragma: no cover  (configuration requires one of the two)
        raise ConfigError(f"binding {ref} has neither caldav nor ics")
    yield Wired(ref, dingtalk, ics_side(ref, binding, session, ctx), policy, binding.concurrency)


def ics_side(
    ref: BindingRef, binding: Binding, session: aiohttp.ClientSession, ctx: Context
) -> IcsSide:
    """The read-only side of an ``ics:`` binding, fetching through ``session``."""
    feed = binding.ics
    if feed is None:
        raise ConfigError(f"binding {binding.id} is not an ics binding")
    client = IcsClient(
        session,
        feed.url,
        username=feed.username,
        password=feed.password.get_secret_value() if feed.password else None,
        timeout=feed.timeout,
    )
    return IcsSide(client, ctx, feed.identity, ref)
