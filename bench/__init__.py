"""syncd benchmarks: real Radicale, Redis and the DingTalk sandbox on loopback.

``python -m bench`` runs every benchmark, ``python -m bench NAME`` one of them
(``idle``, ``latency``, ``initial``, ``webhook``). Each writes its numbers as JSON to
``bench/results/NAME.json`` and prints a Markdown summary; BENCHMARKS.md quotes them.
Benchmarks are not part of the test run.
"""
