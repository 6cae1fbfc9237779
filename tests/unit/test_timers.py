"""The shared due-time heap: earliest first, stale entries skipped, limits respected."""

from __future__ import annotations

from shared.timers import DueHeap


def test_due_keys_come_out_earliest_first_and_stale_entries_are_skipped() -> None:
    current = {"a": 30.0, "b": 10.0, "c": 20.0}
    heap = DueHeap(lambda due, key: current.get(key) == due)
    for key, due in current.items():
        heap.push(due, key)
    heap.push(5.0, "a")  # an older entry of "a": no longer its due time
    assert heap.next_due() == 10.0
    assert heap.pop_due(25.0, limit=10) == ["b", "c"]
    assert heap.pop_due(100.0, limit=10) == ["a"]
    assert heap.next_due() is None


def test_pop_due_takes_at_most_the_limit_and_keeps_the_rest() -> None:
    heap = DueHeap(lambda due, key: True)
    for i in range(5):
        heap.push(float(i), f"k{i}")
    assert heap.pop_due(10.0, limit=2) == ["k0", "k1"]
    assert heap.pop_due(10.0, limit=10) == ["k2", "k3", "k4"]


def test_retain_drops_keys_that_moved_away() -> None:
    heap = DueHeap(lambda due, key: True)
    heap.push(1.0, "mine")
    heap.push(0.5, "theirs")
    heap.retain({"mine"})
    assert heap.pop_due(10.0, limit=10) == ["mine"]
