"""Command lines of the CalDAV servers that run from this Python: Radicale and Xandikos.

Both listen on 127.0.0.1 only and log one line per request (the demo counts them, the
tests read them back). Cyrus and DAViCal, which need more than a command line, have
their own modules.
"""

from __future__ import annotations

import sys
from pathlib import Path


def radicale_command(port: int, storage: Path, *, htpasswd: Path | None = None) -> list[str]:
    """Radicale 3 on 127.0.0.1:``port`` keeping collections under ``storage``.

    With ``htpasswd`` (a plain-text ``user:password`` file) it authenticates against it;
    without, any user name and password are accepted. ``--config ""`` ignores the user's
    and the system's Radicale config files; ``--logging-level info`` logs every request.
    """
    plain = ("--auth-htpasswd-filename", str(htpasswd), "--auth-htpasswd-encryption", "plain")
    auth = ("--auth-type", "htpasswd", *plain) if htpasswd else ("--auth-type", "none")
    return [
        *(sys.executable, "-m", "radicale", "--config", ""),
        *("--server-hosts", f"127.0.0.1:{port}", *auth, "--rights-type", "authenticated"),
        *("--storage-filesystem-folder", str(storage), "--logging-level", "info"),
    ]


def xandikos_command(port: int, storage: Path, *, push: bool = False) -> list[str]:
    """Xandikos on 127.0.0.1:``port`` (no authentication of its own), data in ``storage``;
    ``--defaults`` makes the ``user`` principal with a ``calendars/`` home.

    ``push``: with WebDAV-Push (``--webdav-push``), through the launcher that makes it
    trust a private CA (:mod:`syncd_lab.stack.xandikos_push`; start it with its
    ``push_env``)."""
    module = "syncd_lab.stack.xandikos_push" if push else "xandikos"
    return [
        *(sys.executable, "-m", module, "serve", "--defaults", "-d", str(storage)),
        *("-p", str(port), "-l", "127.0.0.1", "--no-detect-systemd"),
        *(("--webdav-push", "--state-dir", str(storage.parent / "state")) if push else ()),
    ]
