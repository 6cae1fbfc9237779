from scheduler.domain import State
from scheduler.timetable import Timetable
from tests.scheduler.test_domain import post


def test_counts_follow_posts_as_they_change_state_leave_and_are_revoked() -> None:
    timetable = Timetable()
    timetable.assign([0, 1], [post(post_id="a"), post(post_id="b"), post(post_id="c", partition=1)])
    timetable.put(post(State.DISPATCHED, post_id="a"))
    timetable.remove("b")
    timetable.remove("never-there")
    assert timetable.counts() == {State.SCHEDULED: 1, State.DISPATCHED: 1}

    timetable.revoke([1])
    assert timetable.counts() == {State.DISPATCHED: 1}
