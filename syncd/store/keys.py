"""Every Redis key syncd writes, in one place.

Keys are namespaced per tenant, and per binding below it; tenant and binding ids are
percent-encoded, so no id can reach into another's namespace::

    syncd:<tenant>:binding:<binding>:pairs      hash   uid -> JSON PairState
    syncd:<tenant>:binding:<binding>:by_dt      hash   DingTalk event id -> uid
    syncd:<tenant>:binding:<binding>:by_dav     hash   CalDAV href -> uid
    syncd:<tenant>:binding:<binding>:cursor     hash   side ("dingtalk"/"caldav") -> token
    syncd:<tenant>:binding:<binding>:conflicts  list   JSON ConflictRecord, oldest first
    syncd:<tenant>:binding:<binding>:dead       list   JSON dead letters, oldest first
    syncd:<tenant>:binding:<binding>:status     hash   field -> JSON value (merged)
    syncd:<tenant>:binding:<binding>:dirty      string while a reconcile request is untaken: the
                                                   Unix time of the oldest one ("1": unknown)
    syncd:<tenant>:binding:<binding>:full       string "1" while a full reconcile is asked for
    syncd:<tenant>:binding:<binding>:gen        int    generation of the binding's reconcile job id
    syncd:<tenant>:binding:<binding>:lock       string owner token of the running reconcile (PX)
    syncd:<tenant>:binding:<binding>:running    hash   token (, full) of the run serving a request
    syncd:<tenant>:binding:<binding>:changed    string Unix time a run last saw a change (PX)
    syncd:<tenant>:binding:<binding>:webdav_push hash  the binding's WebDAV-Push subscription
                                                   (token, url, renew_at, expires, location)
    syncd:<tenant>:push:<push id>               string "1" once a DingTalk push was accepted (EX)
    syncd:<tenant>:stream                       string holder of the tenant's Stream connection (PX)
    syncd:<tenant>:failed_pull                  string "1" until the next failedResults pull (PX)
    syncd:<tenant>:directory                    string JSON of the last good DingTalk import
    syncd:<tenant>:directory_due                string "1" until the next directory import (PX)
    syncd:@poll:schedule                        zset   binding -> Unix time of its next poll
    syncd:@runs:running                         set    bindings with a ``running`` record
    syncd:@dingtalk:<app key>:rate              hash   request pace of one DingTalk app (tokens, ts)
    syncd:@dingtalk:<app key>:token             string the app's access token (PX: its cache time)
    syncd:@dingtalk:<app key>:token_lock        string owner of the token refresh under way (PX)

Keys of a DingTalk app (shared by every tenant and worker using it) live under
``syncd:@dingtalk:``: a tenant id starts with a letter or digit, so no tenant's namespace
can reach them.

arq's own keys (``arq:queue``, ``arq:job:<id>``, ...) are arq's business; reconcile job ids
are ``syncd:<tenant>:binding:<binding>:reconcile:<generation>``.
"""

from __future__ import annotations

from urllib.parse import quote, unquote

from syncd.model import BindingRef

PREFIX = "syncd"

# Per binding: the mapping store's keys (``wipe`` deletes exactly these) ...
PAIRS = "pairs"
BY_DINGTALK = "by_dt"
BY_HREF = "by_dav"
CURSORS = "cursor"
CONFLICTS = "conflicts"
DEAD_LETTERS = "dead"
STATUS = "status"
STORE_KEYS = (PAIRS, BY_DINGTALK, BY_HREF, CURSORS, CONFLICTS, DEAD_LETTERS, STATUS)

# ... and the queue's (never wiped: a run may be holding them).
DIRTY = "dirty"
FULL = "full"  # the next run re-lists both sides (daily safety net, replays)
GENERATION = "gen"
LOCK = "lock"
RUNNING = "running"  # a run took the dirty mark and has not finished (crash recovery)
PUSHED = "dt_pushed"  # a DingTalk push named the binding since its last DingTalk listing
LISTED = "dt_listed"  # DingTalk was listed within dingtalk.list_every (expires then)
CHANGED = "changed"  # when a run last saw a change (adaptive poll intervals)
WEBDAV_PUSH = "webdav_push"  # the binding's WebDAV-Push subscription (syncd.store.webdav_push)
RECONCILE_JOB = "reconcile"

# Per tenant.
PUSH = "push"
STREAM = "stream"
FAILED_PULL = "failed_pull"
DIRECTORY = "directory"
DIRECTORY_DUE = "directory_due"

# The poll schedule of every binding (syncd.store.schedule); "@" keeps it out of tenants' space.
POLL_SCHEDULE = f"{PREFIX}:@poll:schedule"

# The bindings that have a ``running`` record (syncd.store.runs), so that the revive cron
# looks at runs in flight only, not at every binding.
RUNNING_SET = f"{PREFIX}:@runs:running"

# Per DingTalk app.
APP_SPACE = "@dingtalk"
RATE = "rate"
TOKEN = "token"  # noqa: S105 (a key name, not a secret)
TOKEN_LOCK = "token_lock"  # noqa: S105


def _part(text: str) -> str:
    return quote(text, safe="")


def binding_key(ref: BindingRef, name: str) -> str:
    """The key ``name`` (one of the constants above) of one binding."""
    return f"{PREFIX}:{_part(ref.tenant)}:binding:{_part(ref.binding)}:{name}"


def push_key(tenant: str, push_id: str) -> str:
    """The dedupe key of one DingTalk push delivery."""
    return f"{PREFIX}:{_part(tenant)}:{PUSH}:{_part(push_id)}"


def tenant_key(tenant: str, name: str) -> str:
    """The key ``name`` (``stream``, ``failed_pull``) of one tenant."""
    return f"{PREFIX}:{_part(tenant)}:{name}"


def app_key(app: str, name: str) -> str:
    """The key ``name`` of one DingTalk app (``app`` is its app key)."""
    return f"{PREFIX}:{APP_SPACE}:{_part(app)}:{name}"


def reconcile_job_id(ref: BindingRef, generation: int) -> str:
    """The arq job id of the binding's reconcile job of one generation."""
    return f"{binding_key(ref, RECONCILE_JOB)}:{generation}"


def binding_member(ref: BindingRef) -> str:
    """``ref`` as a member of a set of bindings (:data:`RUNNING_SET`)."""
    return f"{_part(ref.tenant)}:{_part(ref.binding)}"


def parse_binding_member(member: str) -> BindingRef | None:
    """The binding of a :func:`binding_member` (None if ``member`` is not one)."""
    parts = member.split(":")
    if len(parts) != 2:
        return None
    return BindingRef(unquote(parts[0]), unquote(parts[1]))


def parse_reconcile_job_id(job_id: str) -> BindingRef | None:
    """The binding of a :func:`reconcile_job_id` (None if ``job_id`` is not one)."""
    parts = job_id.split(":")
    if len(parts) != 6 or parts[0] != PREFIX or parts[2] != "binding":
        return None
    if parts[4] != RECONCILE_JOB or not parts[5].isdigit():
        return None
    return BindingRef(unquote(parts[1]), unquote(parts[3]))
