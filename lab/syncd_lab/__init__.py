"""The syncd lab: everything that runs *around* the service, never inside it.

The fake DingTalk server (:mod:`syncd_lab.sandbox`), the local demo
(:mod:`syncd_lab.demo`) and their ``syncd sandbox`` / ``syncd demo`` commands
(:mod:`syncd_lab.cli`, found by syncd's CLI through the ``syncd.commands`` entry point).
This package imports ``syncd``; ``syncd`` never imports it, and its wheel does not hold it.
"""
