"""The ingest worker's on-disk record of stored seqs: ranges, round trip, torn lines,
folding into a snapshot."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hub.ingest.dedup import DuplicateCounter, SeqRanges
from hub.ingest.seenjournal import SeenJournal, parse, render, to_ranges


@pytest.mark.parametrize(("have", "add", "want"), [
    ([], (3, 5), [(3, 5)]),
    ([(1, 2)], (3, 5), [(1, 5)]),                   # touching on the left joins
    ([(7, 9)], (3, 6), [(3, 9)]),                   # touching on the right joins
    ([(1, 2), (5, 6), (9, 9)], (2, 8), [(1, 9)]),   # swallows everything between
    ([(1, 2), (20, 30)], (10, 12), [(1, 2), (10, 12), (20, 30)]),
    ([(1, 10)], (3, 4), [(1, 10)]),                 # already inside
    ([(1, 2)], (5, 4), [(1, 2)]),                   # empty range
])
def test_add_range(have: list[tuple[int, int]], add: tuple[int, int],
                   want: list[tuple[int, int]]) -> None:
    r = SeqRanges()
    for a, b in have:
        r.add_range(a, b)
    r.add_range(*add)
    assert r.pairs() == want


def test_to_ranges_and_text_round_trip() -> None:
    assert to_ranges({5, 1, 2, 3, 9, 10}) == [(1, 3), (5, 5), (9, 10)]
    body = render({"cam-a": [(1, 3), (5, 5)], "cam-b": [(7, 7)], "cam-c": []})
    assert body == b"cam-a 1-3 5-5\ncam-b 7-7\n"
    assert list(parse(body)) == [("cam-a", [(1, 3), (5, 5)]), ("cam-b", [(7, 7)])]


def test_torn_and_foreign_lines_are_skipped() -> None:
    assert list(parse(b"cam-a 1-3\ncam-b 4-\ncam-c\nx 1-2-3\ncam-d 9-9")) == [
        ("cam-a", [(1, 3)]), ("cam-d", [(9, 9)])]


def test_a_restarted_worker_recognises_what_it_stored(tmp_path: Path) -> None:
    first = DuplicateCounter()
    journal = SeenJournal(tmp_path)
    journal.load(first)
    for seq in (1, 2, 3, 7):
        assert not first.is_duplicate("cam-a", seq)
    journal.record({"cam-a": {1, 2, 3, 7}}, first)
    # killed here: nothing closed, nothing flushed beyond the write itself
    again = DuplicateCounter()
    assert SeenJournal(tmp_path).load(again) == 1
    assert [again.is_duplicate("cam-a", s) for s in (2, 7, 4, 8)] == [True, True, False, False]
    assert not again.is_duplicate("cam-b", 1)


def test_a_full_journal_folds_into_a_snapshot(tmp_path: Path) -> None:
    counter = DuplicateCounter()
    journal = SeenJournal(tmp_path, max_bytes=200)
    journal.load(counter)
    for seq in range(1, 200, 2):  # gaps: one range per seq, so the journal grows
        counter.is_duplicate("cam-a", seq)
        journal.record({"cam-a": {seq}}, counter)
    assert os.path.getsize(journal.journal) <= 200
    assert journal.snapshot.exists()
    journal.close()
    again = DuplicateCounter()
    SeenJournal(tmp_path).load(again)
    assert again.is_duplicate("cam-a", 199) and again.is_duplicate("cam-a", 101)
    assert not again.is_duplicate("cam-a", 200)
