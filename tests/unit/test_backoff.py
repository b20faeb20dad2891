"""dcor_wire.backoff: capped doubling ceilings, full jitter, reset."""

from __future__ import annotations

import itertools

import pytest

from dcor_wire.backoff import Backoff


def test_ceilings_double_and_cap_as_documented() -> None:
    b = Backoff(0.5, 30.0, rand=lambda: 1.0)  # rand 1.0: every delay is its ceiling
    delays = [b.next_delay() for _ in range(10)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0]
    assert b.attempt == 10


def test_delay_is_rand_times_ceiling() -> None:
    rands = iter([0.0, 0.5, 0.25, 0.999])
    b = Backoff(1.0, 100.0, rand=lambda: next(rands))
    assert [b.next_delay() for _ in range(4)] == [0.0, 1.0, 1.0, 0.999 * 8]


def test_ceiling_reflects_the_next_attempt() -> None:
    b = Backoff(2.0, 5.0, rand=lambda: 0.0)
    assert b.ceiling() == 2.0
    b.next_delay()
    assert b.ceiling() == 4.0
    b.next_delay()
    assert b.ceiling() == 5.0


def test_reset_starts_the_schedule_over() -> None:
    b = Backoff(0.5, 30.0, rand=lambda: 1.0)
    for _ in range(5):
        b.next_delay()
    b.reset()
    assert b.attempt == 0
    assert [b.next_delay() for _ in range(3)] == [0.5, 1.0, 2.0]


def test_full_jitter_stays_within_zero_and_the_ceiling() -> None:
    # A deterministic sweep of the random source over [0, 1).
    sweep = itertools.cycle([i / 97 for i in range(97)])
    b = Backoff(0.5, 30.0, rand=lambda: next(sweep))
    seen = []
    for _ in range(500):
        ceiling = b.ceiling()
        d = b.next_delay()
        assert 0.0 <= d < ceiling
        seen.append(d)
    # Jitter really spreads: late delays cover most of the capped window.
    late = seen[100:]
    assert min(late) < 1.0 and max(late) > 29.0


def test_huge_attempt_counts_do_not_overflow() -> None:
    b = Backoff(0.5, 30.0, rand=lambda: 1.0)
    b.attempt = 10_000
    assert b.next_delay() == 30.0


def test_default_random_source_is_bounded() -> None:
    b = Backoff(0.1, 0.4)
    for _ in range(50):
        ceiling = b.ceiling()
        assert 0.0 <= b.next_delay() <= ceiling


@pytest.mark.parametrize(("base", "cap"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_invalid_parameters_are_refused(base: float, cap: float) -> None:
    with pytest.raises(ValueError, match="base"):
        Backoff(base, cap)


def test_base_equal_to_cap_is_a_constant_ceiling() -> None:
    b = Backoff(3.0, 3.0, rand=lambda: 1.0)
    assert [b.next_delay() for _ in range(3)] == [3.0, 3.0, 3.0]
