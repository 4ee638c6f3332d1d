"""syncd.defer: PyJWT (imported by redis-py, unused by syncd) is loaded only when used."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from syncd import _deferred

_PROBE = """
import sys
import syncd.worker.tasks, syncd.store.redis, syncd.webhook
print("x509" if "cryptography.x509" in sys.modules else "no-x509")
import jwt, redis.auth.token
token = jwt.encode({"sub": "u"}, "k" * 32, algorithm="HS256")
assert redis.auth.token.jwt.decode(token, "k" * 32, algorithms=["HS256"]) == {"sub": "u"}
assert type(sys.modules["jwt"]) is type(sys), type(sys.modules["jwt"])
print("x509" if "cryptography.x509" in sys.modules else "no-x509")
"""


def test_jwt_and_x509_load_on_first_use_only() -> None:
    """What a worker imports leaves cryptography.x509 out; jwt still works when used."""
    out = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["no-x509", "x509"]


def test_a_module_imported_already_or_absent_is_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded = types.ModuleType("syncd_test_loaded")
    monkeypatch.setitem(sys.modules, "syncd_test_loaded", loaded)
    _deferred.defer("syncd_test_loaded")
    assert sys.modules["syncd_test_loaded"] is loaded
    _deferred.defer("syncd_test_no_such_module")
    assert "syncd_test_no_such_module" not in sys.modules


def test_a_deferred_module_loads_on_attribute_access(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "colorsys", raising=False)
    _deferred.defer("colorsys")
    stand_in = sys.modules["colorsys"]
    assert "rgb_to_hsv" not in vars(stand_in)
    assert stand_in.rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
    assert sys.modules["colorsys"] is not stand_in  # the real module took its place
    assert stand_in.hsv_to_rgb is sys.modules["colorsys"].hsv_to_rgb
