"""Xandikos with WebDAV-Push, trusting a private CA: ``python -m syncd_lab.stack.xandikos_push``.

Xandikos delivers push messages with pywebpush over a ``requests`` session that ignores
the environment (``trust_env = False``), so ``REQUESTS_CA_BUNDLE`` cannot make it trust a
loopback test certificate. This launcher points requests' default CA bundle at the file
named by :data:`CA_ENV` (as installing the CA on a server's host would), then runs
Xandikos' own command line with the remaining arguments. Loopback push resources need
``XANDIKOS_ALLOW_INTERNAL_PUSH_RESOURCE=1`` (set by :func:`push_env`).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

CA_ENV = "SYNCD_LAB_PUSH_CA"


def push_env(ca: Path) -> dict[str, str]:
    """The environment a Xandikos started by this launcher needs to push to loopback."""
    return {**os.environ, CA_ENV: str(ca), "XANDIKOS_ALLOW_INTERNAL_PUSH_RESOURCE": "1"}


def main() -> None:
    import requests.adapters

    ca = os.environ.get(CA_ENV)
    if ca:
        requests.adapters.DEFAULT_CA_BUNDLE_PATH = ca  # type: ignore[attr-defined]
    from xandikos.__main__ import cli_main

    sys.argv = ["xandikos", *sys.argv[1:]]
    cli_main()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main()
