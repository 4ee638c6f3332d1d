"""A sibling's event copied during the create race is removed by the next incremental run."""

from __future__ import annotations

from syncd.reconcile import WithoutForeign, reconcile
from syncd.sync import Policy
from tests.fakes import REF, ev, new_world, summaries


async def test_copy_made_before_the_sibling_saved_its_pair_goes_on_the_next_run() -> None:
    """B listed DingTalk after A created an event there but before A saved its pair, so B
    copied it; once A's pair exists (the id is foreign), B's next incremental run deletes
    its copy, and the run after that writes nothing. B's own events stay."""
    b = new_world()
    own = b.dingtalk.user_create(ev("own", summary="B's own"))
    from_a = b.dingtalk.user_create(ev("a", summary="A's party"))
    await b.sync()  # the race: nothing is foreign yet
    assert summaries(b.caldav) == ["A's party", "B's own"]

    without_a = WithoutForeign(b.dingtalk, frozenset({from_a}))
    report = await reconcile(REF, without_a, b.caldav, b.store, Policy())
    assert report.cursors_committed
    assert report.counts.deleted == 1
    assert summaries(b.caldav) == ["B's own"]
    assert summaries(b.dingtalk) == ["A's party", "B's own"]  # A's event itself stays
    assert [p.dingtalk_id for p in (await b.store.load_pairs(REF)).values()] == [own]

    b.reset_counts()
    again = await reconcile(REF, without_a, b.caldav, b.store, Policy())
    assert (b.writes(), again.counts.deleted) == (0, 0)
