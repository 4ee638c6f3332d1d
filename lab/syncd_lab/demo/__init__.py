"""``syncd demo``: the whole product on this machine, showing changes flowing both ways.

Starts Redis and Radicale as child processes, the DingTalk sandbox and syncd (webhook and
worker) in this process, all on loopback; then creates a meeting in DingTalk, shows it in
Radicale, edits it through CalDAV, shows it in DingTalk, and measures latencies and the
requests of an idle reconcile. :func:`run_demo` is the entry point; the CLI owns signals.
"""

from syncd_lab.demo._errors import DemoFailed
from syncd_lab.demo.run import DemoOptions, run_demo
from syncd_lab.demo.scenario import Results

__all__ = ["DemoFailed", "DemoOptions", "Results", "run_demo"]
