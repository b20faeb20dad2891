"""Zone counts read back from InfluxDB: the query, overlapping reads, windows."""

from __future__ import annotations

import pytest

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
