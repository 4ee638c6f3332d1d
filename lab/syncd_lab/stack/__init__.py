"""The local stack: the servers syncd talks to, started on loopback for the demo, the tests
and the benchmarks alike (one copy of each, no second one in ``tests/`` or ``bench/``).

* :mod:`~syncd_lab.stack.ports` — free loopback ports, "is it listening", ``HOST:PORT``.
* :mod:`~syncd_lab.stack.redis_server` — the ``redis-server`` binary and its command line.
* :mod:`~syncd_lab.stack.dav` — Radicale's and Xandikos' command lines.
* :mod:`~syncd_lab.stack.caldav_base`, :mod:`~syncd_lab.stack.cyrus`,
  :mod:`~syncd_lab.stack.davical` — CalDAV servers run as process groups with request logs
  (Cyrus IMAP and DAViCal from Debian's packages: ``make caldav-servers``).
* :mod:`~syncd_lab.stack.serving` — an aiohttp app served in-process on a loopback port.
* :mod:`~syncd_lab.stack.config` — syncd configuration directories (``syncd.yaml`` and
  ``tenants/*.yaml``) written from plain data.
"""
