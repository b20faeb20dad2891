"""Per-zone detection counts for detection rules, read back from InfluxDB. Pure.

The ingest writes ``zone_counts`` points (tags device, camera, zone, class, kecamatan,
kelurahan; field ``count``, the peak of one class seen at once in one interval; time = the
interval's start on the device). The evaluator asks for the recent ones every tick with
``zone_counts_query`` and keeps them in ``ZoneSamples``; a point read twice overwrites itself,
as it does in InfluxDB, so overlapping reads are harmless.

A sample is stamped with the end of its interval, when its count is complete: a window then
holds the newest sample as soon as it can exist, and a rule's window only has to be longer
than one interval plus the delivery delay (stamped with the start it would take two). The
interval is not in ``zone_counts``; it is taken as the smallest spacing of the zone's samples
(empty intervals send no zone sample, so spacings are whole multiples of it).

Reads overlap by ``late_s``: a point stored up to that long after its interval began (the
agent's interval, the ingest's batch, a short outage) is still picked up; older stragglers
are old news for a live alert.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any

from hub.alerts.model import Observation, Subject
from hub.alerts.observe import DetectionWindows
from hub.alerts.rules import DetectionRule, Rule
from hub.influx import quote_string

DEFAULT_LATE_S = 15.0
MAX_INTERVAL = timedelta(minutes=5)


def detection_rules(rules: Iterable[Rule]) -> list[DetectionRule]:
    return [r for r in rules if isinstance(r, DetectionRule)]


def zone_counts_query(classes: Iterable[str], since_ms: int) -> str:
    """InfluxQL for the zone counts of ``classes`` after ``since_ms`` (epoch ms), one series
    per zone and class."""
    wanted = sorted(set(classes))
    if not wanted:
        raise ValueError("no classes to ask for")
    only = " OR ".join(f'"class" = {quote_string(c)}' for c in wanted)
    return (f'SELECT "count" FROM "zone_counts" WHERE time > {int(since_ms)}ms AND ({only}) '
            'GROUP BY "device", "camera", "zone", "class", "kecamatan", "kelurahan"')


class ZoneSamples:
    """Recent samples: zone subject -> interval start -> counts per class.

    Zones are remembered for ``remember_s`` after their last sample, so a zone that went
    quiet (or whose samples were lost in an InfluxDB outage) is observed as empty and its
    alert can clear, instead of the alert staying on its last reading.
    """

    def __init__(self, remember_s: float = 3600.0) -> None:
        self.remember_s = remember_s
        self._samples: dict[Subject, dict[datetime, dict[str, float]]] = {}
        self._known: dict[Subject, datetime] = {}  # zone -> newest sample time
        self._read_to: datetime | None = None  # hub time of the last successful read

    def since(self, now: datetime, rules: Sequence[DetectionRule],
              late_s: float = DEFAULT_LATE_S) -> datetime:
        """Where the next read starts: the longest window back (plus ``late_s``) on the first
        read, else ``late_s`` before the previous read."""
        longest = max((r.window for r in rules), default=0.0)
        start = now - timedelta(seconds=longest + late_s)
        if self._read_to is not None:
            start = max(start, self._read_to - timedelta(seconds=late_s))
        return start

    def merge(self, series: Iterable[Mapping[str, Any]], read_at: datetime) -> int:
        """Add the series of one query answer (``InfluxClient.query`` with epoch ms); returns
        the points taken. Series without the place tags are skipped."""
        taken = 0
        for s in series:
            tags = s.get("tags") or {}
            subject = _zone(tags)
            cls = str(tags.get("class", ""))
            if subject is None or not cls:
                continue
            cols = list(s.get("columns") or [])
            if "time" not in cols or "count" not in cols:
                continue
            t_at, c_at = cols.index("time"), cols.index("count")
            per_zone = self._samples.setdefault(subject, {})
            for values in s.get("values") or []:
                ts, count = values[t_at], values[c_at]
                if not isinstance(ts, int | float) or not isinstance(count, int | float):
                    continue
                at = datetime.fromtimestamp(ts / 1000.0, UTC)
                per_zone.setdefault(at, {})[cls] = float(count)
                self._known[subject] = max(at, self._known.get(subject, at))
                taken += 1
        self._read_to = read_at
        return taken

    def prune(self, before: datetime) -> None:
        forget = before - timedelta(seconds=self.remember_s)
        for subject in [z for z, last in self._known.items() if last <= forget]:
            del self._known[subject]
        for subject in list(self._samples):
            per_zone = self._samples[subject]
            for at in [a for a in per_zone if a <= before]:
                del per_zone[at]
            if not per_zone:
                del self._samples[subject]

    def windows(self, horizon_s: float) -> DetectionWindows:
        """A ``DetectionWindows`` holding every sample at its interval's end, oldest first."""
        out = DetectionWindows(horizon_s)
        for subject in sorted(self._samples, key=lambda z: z.key):
            samples = sorted(self._samples[subject].items())
            interval = _interval([at for at, _ in samples])
            for at, counts in samples:
                out.add(subject, counts, at + interval)
        return out

    def observe(self, rules: Sequence[DetectionRule], now: datetime,
                horizon_s: float) -> list[Observation]:
        """Each rule over each zone it matches: the windows' judgement, and "empty" for a
        remembered zone with no sample left."""
        out = self.windows(horizon_s).observe(rules, now)
        seen = {(o.subject, o.rule_id) for o in out}
        for rule in rules:
            for zone in sorted(self._known, key=lambda z: z.key):
                if (zone, rule.id) in seen or not (fnmatchcase(zone.zone, rule.zones)
                                                   and fnmatchcase(zone.camera, rule.cameras)):
                    continue
                out.append(Observation(zone, rule.id, False, now, value=0.0))
        return out

    def __len__(self) -> int:
        return sum(len(v) for v in self._samples.values())


def _interval(times: Sequence[datetime]) -> timedelta:
    """The smallest spacing of consecutive samples (zero with fewer than two)."""
    gaps = [b - a for a, b in itertools.pairwise(times) if b > a]
    return min(min(gaps, default=timedelta(0)), MAX_INTERVAL)


def _zone(tags: Mapping[str, Any]) -> Subject | None:
    device, camera, zone = tags.get("device"), tags.get("camera"), tags.get("zone")
    if not device or not camera or not zone:
        return None
    return Subject("zone", str(tags.get("kecamatan") or ""), str(tags.get("kelurahan") or ""),
                   device=str(device), camera=str(camera), zone=str(zone))
