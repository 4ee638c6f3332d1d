"""How healthy a binding is, and the one line ``syncd status`` prints for it."""

from __future__ import annotations

from typing import Any

UNHEALTHY = frozenset({"failed", "degraded"})


def status_line(row: dict[str, Any]) -> str:
    """The plain-text status line of one row of ``syncd status``."""
    line = (
        f"{row['binding']}: state={row.get('state', 'never-run')} "
        f"last_success={row.get('last_success', '-')} lag={row.get('lag', '-')} "
        f"pairs={row['pairs']} conflicts={row['conflicts']} dead_letters={row['dead_letters']}"
    )
    return f"{line} reason={' '.join(str(row['reason']).split())}" if row["reason"] else line


def binding_health(status: dict[str, Any], letters: list[dict[str, Any]]) -> tuple[str, str | None]:
    """``(health, reason)`` of a binding: ok, never-run, degraded or failed, and why.

    failed: the last run could not read or plan (``last_error``); degraded: the last run
    left actions failed or deletions held, or dead letters are waiting. The reason is the
    last failure's one-line message (None when healthy).
    """
    state = status.get("state")
    if state in ("failed", "blocked"):
        return ("failed" if state == "failed" else "degraded"), str(status.get("last_error"))
    if state == "partial" and status.get("errors"):
        errors = status["errors"]
        first = errors[0]
        more = f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""
        return "degraded", f"{first.get('uid')}: {first.get('error')}: {first.get('message')}{more}"
    if state == "held":
        return "degraded", f"{len(status.get('held_deletions') or [])} deletion(s) held"
    if letters:
        return "degraded", _letter_reason(letters[-1])
    return ("never-run" if state is None else "ok"), None


def _letter_reason(letter: dict[str, Any]) -> str:
    """One line for a dead letter: its error, and the item's message when it has one."""
    if "uid" in letter:
        return f"{letter.get('uid')}: {letter.get('error')}: {letter.get('message')}"
    return str(letter.get("error"))
