"""Frozen pydantic models of ``syncd.yaml`` (:class:`Settings`) and a tenant (:class:`Tenant`).

No I/O here: :mod:`syncd.config._load` reads the files. Secrets are ``SecretStr`` (their repr
is ``'**********'``); every model hides its input in validation errors.
"""

from __future__ import annotations

import math
from datetime import time
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from syncd.config._checks import consistency_problems
from syncd.config._types import (
    AesKey,
    Duration,
    Email,
    HttpUrl,
    Ident,
    Listen,
    LogLevel,
    NonEmptyStr,
    RedisUrl,
    Regex,
    Secret,
    TimeOfDay,
    Timezone,
    parse_listen,
)
from syncd.errors import ConfigError
from syncd.model import ConflictPolicy, Direction

if TYPE_CHECKING:  # syncd.translate (icalendar) is imported only when a context is built:
    from syncd.translate.context import Context  # `syncd check` starts faster without it

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_DINGTALK_QPS = 15.0
"""DingTalk allows a standard org's app 20 calls/s per API; syncd paces all APIs together."""
DEFAULT_CONCURRENCY = 4
"""Writes one reconcile of one binding keeps in flight (items; a series' parts stay ordered)."""
MAX_CONCURRENCY = 10
"""The most: the CalDAV client's connection pool keeps 10 connections per server (niquests)."""
CONSISTENCY_ERROR = "tenant_consistency"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)


# --- syncd.yaml -------------------------------------------------------------------------


class LogSettings(_Frozen):
    """How the process logs: JSON lines in production, the console renderer in development."""

    format: Literal["json", "console"] = "json"
    level: LogLevel = "info"


class DeletionThreshold(_Frozen):
    """When a run's planned deletions on one side are held instead of executed."""

    max_count: int = Field(default=20, ge=0, description="held when more deletions than this ...")
    max_ratio: float = Field(
        default=0.5, ge=0, le=1, description="... and more than this share of pairs"
    )

    def exceeded(self, deletions: int, pairs: int) -> bool:
        """True when ``deletions`` out of ``pairs`` mapped pairs must be held, not executed."""
        return deletions > self.max_count and deletions > self.max_ratio * pairs


class PollCadence(_Frozen):
    """How a CalDAV binding's poll interval adapts to recent changes (``poll_cadence``).

    A binding whose reconcile saw a change (either side) is polled every ``fast`` for
    ``fast_for`` after that change; over the next ``settle`` the interval grows linearly
    back to the binding's ``poll_interval``; once ``idle_after`` has passed without a
    change it is ``poll_interval`` × ``idle_factor``. ``fast`` never makes a binding poll more
    often than its ``poll_interval`` asks; ``fast`` at least ``poll_interval`` and
    ``idle_factor: 1`` give a fixed interval (as before ``poll_cadence``). ICS feeds keep
    their ``refresh``.
    """

    fast: Duration = Field(default=2.0, ge=1.0, description="interval right after a change")
    fast_for: Duration = Field(
        default=120.0, le=86400.0, description="how long polls stay fast after a change"
    )
    settle: Duration = Field(
        default=300.0, le=86400.0, description="then the interval grows back over this"
    )
    idle_after: Duration = Field(
        default=3600.0, ge=1.0, le=7 * 86400.0, description="no change for this long: idle"
    )
    idle_factor: float = Field(
        default=2.0, ge=1.0, le=10.0, description="an idle binding polls every poll_interval × this"
    )

    def interval(self, base: float, since_change: float | None) -> float:
        """Seconds to the next poll of a binding polled every ``base`` when steady, whose
        last change was ``since_change`` seconds ago (None: none in ``idle_after``)."""
        if since_change is None or since_change >= self.idle_after:
            return base * self.idle_factor
        fast = min(self.fast, base)
        late = since_change - self.fast_for
        if late < 0:
            return fast
        if late < self.settle:
            return fast + (base - fast) * late / self.settle
        return base


class WebDavPush(_Frozen):
    """``webdav_push``: CalDAV servers that offer WebDAV-Push tell syncd of a change at once.

    The workers register a subscription for every CalDAV binding whose server advertises
    it; the server then POSTs to ``<public_url>/webdav-push/<tenant>/<binding>/<token>``
    (``syncd serve``), which queues a reconcile of that binding. Polls carry on as before.
    """

    public_url: HttpUrl = Field(
        description="the https URL at which CalDAV servers reach syncd serve (no path: "
        "push resources are <public_url>/webdav-push/...)"
    )
    lifetime: Duration = Field(
        default=7 * 86400.0,
        ge=60.0,
        le=30 * 86400.0,
        description="how long a subscription is asked to last; renewed with half of it left",
    )

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")


class Settings(_Frozen):
    """Process settings from ``DIR/syncd.yaml``; every key is optional."""

    redis_url: RedisUrl = Field(default=DEFAULT_REDIS_URL, repr=False)  # may hold a password
    listen: Listen = "127.0.0.1:8080"
    log: LogSettings = LogSettings()
    callback_max_body: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    callback_max_skew: Duration = 3600.0
    full_reconcile_at: TimeOfDay = time(3, 0)
    deletion_threshold: DeletionThreshold = DeletionThreshold()
    poll_cadence: PollCadence = PollCadence()
    webdav_push: WebDavPush | None = None
    lock_ttl: Duration = Field(
        default=15.0,
        ge=1.0,
        le=600.0,
        description="lease of a binding's reconcile lock: a killed worker's bindings are "
        "taken over this long after its last heartbeat (refreshed every third of it)",
    )
    shutdown_timeout: Duration = Field(
        default=30.0,
        ge=1.0,
        le=3600.0,
        description="on SIGTERM, how long running jobs may take to finish before they are "
        "abandoned (safely: they run again elsewhere) and the process exits",
    )

    @property
    def listen_host(self) -> str:
        """The host part of ``listen``."""
        return parse_listen(self.listen)[0]

    @property
    def listen_port(self) -> int:
        """The port part of ``listen``."""
        return parse_listen(self.listen)[1]


# --- tenants/<id>.yaml ------------------------------------------------------------------


class Callback(_Frozen):
    """The tenant's DingTalk event subscription: token, EncodingAESKey, owner key."""

    token: Secret
    aes_key: AesKey = Field(description="the 43-character EncodingAESKey")
    owner_key: NonEmptyStr | None = Field(default=None, description="defaults to dingtalk.app_key")


class DingTalkApp(_Frozen):
    """The tenant's DingTalk app: where its Open API is, how to sign in, how events arrive.

    ``delivery: http`` (default) takes events at ``POST /callbacks/{tenant}`` and needs
    ``callback``; ``delivery: stream`` takes them over a DingTalk Stream connection that the
    workers open (:mod:`syncd.delivery`), needs no public URL, and ``callback`` is optional.
    """

    api_base: HttpUrl = "https://api.dingtalk.com"
    app_key: NonEmptyStr
    app_secret: Secret
    delivery: Literal["http", "stream"] = "http"
    callback: Callback | None = None
    qps: float = Field(
        default=DEFAULT_DINGTALK_QPS,
        gt=0,
        le=10_000,
        description="the most DingTalk calls per second all workers together make for this app",
    )
    list_every: Literal["always"] | Duration = Field(
        default=300.0,
        description="a reconcile with no DingTalk push to serve and nothing to write to DingTalk "
        "still lists DingTalk if it was not listed for this long (finds a lost push); "
        "always: list DingTalk on every run (pushes do not reach syncd)",
    )

    @field_validator("api_base")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _callback_for_http(self) -> DingTalkApp:
        if self.delivery == "http" and self.callback is None:
            raise ValueError("callback is required with delivery: http (or use delivery: stream)")
        return self


class DirectoryEntry(_Frozen):
    """One DingTalk user: unionId and e-mail address (for attendees and organizers)."""

    union_id: NonEmptyStr
    email: Email


class DirectoryImport(_Frozen):
    """``directory: {source: dingtalk, refresh, extra}``: the directory comes from DingTalk.

    The tenant's ``directory`` then holds the ``extra`` entries, merged over the import.
    """

    source: Literal["dingtalk"]
    refresh: Duration = Field(default=3600.0, ge=10.0, description="how often it is re-imported")


class CalDAVSource(_Frozen):
    """A CalDAV calendar collection and the credentials to reach it."""

    url: HttpUrl
    username: NonEmptyStr | None = None
    password: Secret | None = None
    timeout: Duration = Field(
        default=30.0, description="how long one request may take before it counts as failed"
    )
    create: bool = Field(
        default=False, description="make the calendar collection (MKCALENDAR) when it is missing"
    )

    @model_validator(mode="after")
    def _password_needs_user(self) -> CalDAVSource:
        if self.password is not None and self.username is None:
            raise PydanticCustomError("caldav", "a password needs a username")
        return self


IcsIdentity = Literal["uid", "content", "auto"]
ICS_MAX_TIMEOUT = 60.0
# An http(s) URL once ``webcal://`` has been read as ``https://`` (IcsSource does that first).
FeedUrl = Annotated[
    HttpUrl,
    WithJsonSchema({"type": "string", "format": "uri", "pattern": "^(https?|webcal)://"}),
]


class IcsSource(_Frozen):
    """A read-only iCalendar feed imported into DingTalk (``webcal://`` is read as https)."""

    url: FeedUrl = Field(repr=False)  # private feed URLs carry their secret in the path
    refresh: Duration = Field(default=3600.0, description="how often the feed is fetched")
    username: NonEmptyStr | None = None
    password: Secret | None = None
    identity: IcsIdentity = Field(
        default="auto",
        description="uid | content | auto: how a feed item is recognised from one fetch to "
        "the next; auto uses UIDs unless the feed regenerates them",
    )
    timeout: Duration = Field(
        default=ICS_MAX_TIMEOUT,
        gt=0,
        le=ICS_MAX_TIMEOUT,
        description="the most one fetch may take, redirects and body included (at most 60s)",
    )

    @field_validator("url", mode="before")
    @classmethod
    def _webcal_is_https(cls, value: Any) -> Any:
        if isinstance(value, str) and value[:9].lower() == "webcal://":
            return "https://" + value[9:]
        return value

    @model_validator(mode="after")
    def _password_needs_user(self) -> IcsSource:
        if self.password is not None and self.username is None:
            raise PydanticCustomError("ics", "a password needs a username")
        return self


DAY = 86400.0
MAX_WINDOW_DAYS = 36500  # every year of window is one more ListEvents call


class SyncWindow(_Frozen):
    """How far back and ahead a full DingTalk listing reaches (event starts, from now).

    DingTalk lists events only inside a time range; events starting outside it are
    neither copied nor taken for deleted. Durations are rounded up to whole days.
    """

    past: Duration = Field(default=183 * DAY, description="before now, e.g. 183d")
    future: Duration = Field(default=365 * DAY, description="after now, e.g. 365d")

    @field_validator("past", "future")
    @classmethod
    def _at_most_a_century(cls, value: float) -> float:
        if value > MAX_WINDOW_DAYS * DAY:
            raise PydanticCustomError("window", "at most {days}d", {"days": MAX_WINDOW_DAYS})
        return value

    @property
    def past_days(self) -> int:
        """``past`` in whole days (rounded up)."""
        return math.ceil(self.past / DAY)

    @property
    def future_days(self) -> int:
        """``future`` in whole days (rounded up)."""
        return math.ceil(self.future / DAY)


class EventFilter(_Frozen):
    """Which events a binding copies; an event that does not pass stays on its side."""

    skip_declined: bool = Field(default=False, description="events the bound user declined")
    skip_all_day: bool = False
    skip_private: bool = Field(default=False, description="CLASS PRIVATE or CONFIDENTIAL")
    skip_free: bool = Field(default=False, description="TRANSP:TRANSPARENT / freeBusyStatus free")
    exclude_summary: tuple[Regex, ...] = Field(
        default=(), description="Python regexes searched in the summary"
    )


class Transform(_Frozen):
    """How a binding marks its copies."""

    summary_prefix: str = Field(
        default="", description="added to a copy's summary, removed on the way back"
    )


class Binding(_Frozen):
    """One DingTalk user's primary calendar bound to one CalDAV calendar or ICS feed."""

    id: Ident
    dingtalk_user: NonEmptyStr = Field(description="unionId; must be in the directory")
    caldav: CalDAVSource | None = None
    ics: IcsSource | None = None
    direction: Direction = Field(default="both", description="an ics binding is always to_dingtalk")
    conflict: ConflictPolicy = "newest"
    poll_interval: Duration = Field(default=30.0, description="how often the CalDAV side is polled")
    concurrency: int = Field(
        default=DEFAULT_CONCURRENCY,
        ge=1,
        le=MAX_CONCURRENCY,
        description="items one run writes at once (a series stays in order; DingTalk paced)",
    )
    deletion_threshold: DeletionThreshold | None = Field(
        None, description="overrides the one in syncd.yaml for this binding"
    )
    window: SyncWindow = Field(
        default=SyncWindow(), description="the range of a full DingTalk listing"
    )
    mirror: Literal["full", "busy"] = Field(
        default="full", description="busy: only the time and free/busy state travel"
    )
    busy_title: NonEmptyStr = Field(default="Busy", description="the title of a busy copy")
    filter: EventFilter = EventFilter()
    transform: Transform = Transform()

    @model_validator(mode="before")
    @classmethod
    def _ics_defaults_to_dingtalk(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("ics") is not None and "direction" not in data:
            return {**data, "direction": "to_dingtalk"}
        return data

    @field_validator("direction")
    @classmethod
    def _ics_is_one_way(cls, value: str, info: ValidationInfo) -> str:
        if info.data.get("ics") is not None and value != "to_dingtalk":
            raise PydanticCustomError("direction", "an ics binding can only be to_dingtalk")
        return value

    @field_validator("poll_interval")
    @classmethod
    def _caldav_only(cls, value: float, info: ValidationInfo) -> float:
        if info.data.get("ics") is not None:
            raise PydanticCustomError("poll", "an ics binding is refreshed by ics.refresh")
        return value

    @model_validator(mode="after")
    def _exactly_one_source(self) -> Binding:
        if (self.caldav is None) == (self.ics is None):
            raise PydanticCustomError("source", "a binding needs exactly one of caldav or ics")
        return self

    @property
    def kind(self) -> Literal["caldav", "ics"]:
        """Which kind of calendar the DingTalk side is bound to."""
        return "caldav" if self.caldav is not None else "ics"


class DepartmentSelector(_Frozen):
    """``users: {department: <deptId>}``: the department's members and its sub-departments'."""

    department: int = Field(ge=1)


class CalDAVTemplate(_Frozen):
    """The ``caldav`` of a binding template: ``url`` may hold ``{user}``, ``{email}``, ``{local}``.

    ``create: true`` asks for the collection to be made when missing (MKCALENDAR).
    """

    url: NonEmptyStr
    username: NonEmptyStr | None = None
    password: Secret | None = None
    timeout: Duration = 30.0
    create: bool = False


class BindingTemplate(_Frozen):
    """One binding per directory user it selects (``syncd.config.templates`` expands it)."""

    id: NonEmptyStr = Field(description='e.g. "{local}-work"; must expand to a valid id')
    users: Literal["all"] | tuple[NonEmptyStr, ...] | DepartmentSelector = "all"
    caldav: CalDAVTemplate
    direction: Direction = "both"
    conflict: ConflictPolicy = "newest"
    poll_interval: Duration = 30.0
    concurrency: int = Field(default=DEFAULT_CONCURRENCY, ge=1, le=MAX_CONCURRENCY)
    deletion_threshold: DeletionThreshold | None = None
    window: SyncWindow = SyncWindow()


class Tenant(_Frozen):
    """One DingTalk organisation: its app, its directory and its bindings.

    ``directory`` is a static list, or ``{source: dingtalk, refresh, extra}``: then the
    import settings go to ``directory_import`` and ``directory`` holds the ``extra`` entries.
    """

    id: Ident = Field(description="must equal the file name without .yaml")
    timezone: Timezone = Field(default="UTC", description="IANA zone for floating times")
    dingtalk: DingTalkApp
    directory: tuple[DirectoryEntry, ...] = ()
    directory_import: DirectoryImport | None = None
    bindings: tuple[Binding, ...] = ()
    binding_templates: tuple[BindingTemplate, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _imported_directory(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("directory"), dict):
            settings = dict(data["directory"])
            extra = settings.pop("extra", None) or ()
            return {**data, "directory": extra, "directory_import": settings}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Tenant:
        problems = consistency_problems(
            self.model_dump(include={"directory", "directory_import", "bindings"})
        )
        if problems:
            loc, message = problems[0]
            raise PydanticCustomError(
                CONSISTENCY_ERROR,
                "{where}: {first}",
                {"where": ".".join(map(str, loc)), "first": message, "problems": problems},
            )
        return self

    @property
    def owner_key(self) -> str:
        """The owner key of callback envelopes: ``callback.owner_key``, else ``app_key``."""
        callback = self.dingtalk.callback
        return (callback.owner_key if callback else None) or self.dingtalk.app_key

    def binding(self, binding_id: str) -> Binding:
        """The binding named ``binding_id``; :class:`ConfigError` if the tenant has none."""
        for binding in self.bindings:
            if binding.id == binding_id:
                return binding
        raise ConfigError(f"tenant {self.id!r} has no binding {binding_id!r}")

    def directory_map(self) -> dict[str, str]:
        """DingTalk unionId -> e-mail address."""
        return {entry.union_id: entry.email for entry in self.directory}

    def context(self, binding_id: str) -> Context:
        """The translation context of one binding: directory, bound user and zone."""
        from syncd.translate.context import Context, Directory

        binding = self.binding(binding_id)
        return Context(
            directory=Directory(emails=self.directory_map()),
            user=binding.dingtalk_user,
            timezone=self.timezone,
        )
