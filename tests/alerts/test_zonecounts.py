"""Zone counts read back from InfluxDB: the query, overlapping reads, windows."""

from __future__ import annotations

import pytest

from hub.alerts.rules import DetectionRule
from hub.alerts.zonecounts import ZoneSamples, detection_rules, zone_counts_query
from tests.alerts.fakes import FakeInflux
from tests.alerts.scenario import rules, t


def test_query_asks_only_for_the_rules_classes() -> None:
    q = zone_counts_query(["person", "car", "person"], 1_700_000_000_123)
    assert q == ('SELECT "count" FROM "zone_counts" WHERE time > 1700000000123ms AND '
                 '("class" = \'car\' OR "class" = \'person\') GROUP BY "device", "camera", '
                 '"zone", "class", "kecamatan", "kelurahan"')
    assert "\\'" in zone_counts_query(["it's"], 0)  # quoted, never raw
    with pytest.raises(ValueError):
        zone_counts_query([], 0)


def test_overlapping_reads_count_each_point_once() -> None:
    jam = detection_rules(rules().by_id.values())
    assert [r.id for r in jam] == ["jam"]
    influx = FakeInflux()
    samples = ZoneSamples()
    # First read reaches back the longest window plus the lateness allowance.
    assert samples.since(t(100), jam, late_s=15) == t(100 - 30 - 15)
    for at in (60, 70, 80, 90):
        influx.add(t(at), 6)
        influx.add(t(at), 2, cls="bus")
    influx.add(t(80), 50, cls="person")  # not a class of any rule
    samples.merge(influx.query(zone_counts_query(["car", "bus"], 0)), t(100))
    samples.merge(influx.query(zone_counts_query(["car", "bus"], 0)), t(101))  # again
    assert len(samples) == 4
    # Later reads start ``late_s`` before the previous read.
    assert samples.since(t(200), jam, late_s=15) == t(200 - 45)
    assert samples.since(t(102), jam, late_s=15) == t(101 - 15)
    [obs] = samples.windows(45).observe(jam, t(95))
    assert obs.subject.key == "zone:cam-1/cam1/gate" and obs.subject.kelurahan == "Beji Timur"
    assert obs.value == 8.0 and obs.active  # min over the window of car + bus
    samples.prune(t(85))
    assert len(samples) == 1


def test_series_without_place_or_values_are_skipped() -> None:
    samples = ZoneSamples()
    taken = samples.merge([
        {"tags": {"device": "d", "camera": "c", "class": "car"}, "columns": ["time", "count"],
         "values": [[1, 2]]},  # no zone
        {"tags": {"device": "d", "camera": "c", "zone": "z", "class": "car"},
         "columns": ["time", "count"], "values": [[1, None], ["x", 3], [2_000, 4]]},
    ], t(0))
    assert taken == 1 and len(samples) == 1


def test_a_quiet_zone_is_observed_empty_until_forgotten() -> None:
    jam = detection_rules(rules().by_id.values())
    influx = FakeInflux()
    influx.add(t(0), 9)
    samples = ZoneSamples(remember_s=600)
    samples.merge(influx.query(zone_counts_query(["car"], 0)), t(1))
    [busy] = samples.observe(jam, t(1), horizon_s=45)
    assert busy.active and busy.value == 9
    samples.prune(t(300))  # the samples are gone, the zone is remembered
    [quiet] = samples.observe(jam, t(300), horizon_s=45)
    assert (quiet.active, quiet.value, quiet.subject) == (False, 0.0, busy.subject)
    samples.prune(t(700))
    assert samples.observe(jam, t(700), horizon_s=45) == []


def test_samples_count_from_the_end_of_their_interval() -> None:
    """Counts arrive after their interval ends: a 4 s window over 2 s intervals must always
    hold the newest one, even just before the next arrives."""
    crowd = [DetectionRule(id="crowd", kind="detection", desk="ops", classes=["car"],
                           min_count=3, window=4, aggregate="mean")]
    influx = FakeInflux()
    for at in range(0, 12, 2):
        influx.add(t(at), 5)
    samples = ZoneSamples()
    samples.merge(influx.query(zone_counts_query(["car"], 0)), t(12.4))
    window = samples.windows(60)
    # The newest sample began at t(10) and arrived at ~t(12.3); at t(13.9) the next one is
    # not in yet, and the window (t(9.9), t(13.9)] still holds it, stamped t(12).
    for now in (12.4, 13.0, 13.9):
        [obs] = window.observe(crowd, t(now))
        assert obs.value == 5.0, now
        assert obs.active
    assert window.observe(crowd, t(16.5))[0].value == 0.0  # nothing for a whole window
