"""The webhook's one table of error -> response covers every refusal a callback can meet."""

from __future__ import annotations

import pytest

from syncd import errors
from syncd.webhook.handlers import ANSWERS


def _subclasses(cls: type[errors.SyncdError]) -> list[type[errors.SyncdError]]:
    found = []
    for sub in cls.__subclasses__():
        found += [sub, *_subclasses(sub)]
    return found


@pytest.mark.parametrize(
    "cls",
    [errors.CallbackError, *_subclasses(errors.CallbackError), errors.StoreUnavailable],
    ids=lambda c: c.__name__,
)
def test_every_callback_and_store_error_has_an_answer(cls: type[errors.SyncdError]) -> None:
    """Each CallbackError (4xx) and store error (503) maps to a status; none falls to a 500."""
    statuses = [status for error, status, _ in ANSWERS if issubclass(cls, error)]
    if cls is errors.CallbackError:  # the base itself is never raised
        assert statuses == []
        return
    assert statuses, f"{cls.__name__} has no answer"
    assert 400 <= statuses[0] < 500 or (statuses[0] == 503 and issubclass(cls, errors.StoreError))


def test_store_outages_are_retried_and_refusals_are_not() -> None:
    """503 (DingTalk retries) exactly for store errors; the first matching entry wins."""
    first = {cls: next(s for e, s, _ in ANSWERS if issubclass(cls, e)) for cls, _, _ in ANSWERS}
    assert {cls for cls, status in first.items() if status == 503} == {
        errors.StoreUnavailable,
        errors.StoreError,
    }
    assert first[errors.UnknownTenant] == 404
    assert first[errors.BodyTooLarge] == 413
