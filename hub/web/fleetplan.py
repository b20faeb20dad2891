"""What the fleet page lists (pure): its filters, which devices need attention, and which
rows are folded.

A city's fleet is thousands of devices; a page that draws every row on every refresh is slow
to build and nobody reads it. The page therefore counts every device per kecamatan and
kelurahan, lists in full every device that needs attention (late, offline, never heard from,
or a camera reporting a fault), and folds the others per kelurahan behind a link that opens
them (``open=<kecamatan>\\x1f<kelurahan>``, several allowed). When the filtered set is small
(``INLINE_MAX``) nothing is folded and the page reads as a plain list.

No Flask, no SQL: ``hub.web.views`` reads the index (``data.iter_index``), asks ``plan`` what
to show and loads only those rows in full.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final, NamedTuple

from werkzeug.datastructures import MultiDict

from dcor_wire.topics import DEVICE_ID_RE
from hub.web.fleet import BUCKET_OF_STATE, DeviceBrief, compute_state
from hub.web.livefleet import SEP, place_key
from hub.web.queryargs import QueryError, limit_of, single

# More matching devices than this and the rows without problems are folded per kelurahan.
INLINE_MAX: Final = 200
ATTENTION_STATES: Final = frozenset({"stale", "offline", "unknown"})
# ``state=`` of the page and the API: a device state, or every device needing attention.
STATE_FILTERS: Final = ("attention", "online", "stale", "offline", "unknown", "decommissioned")
MAX_OPEN: Final = 50  # folded kelurahan one request may open
MAX_TEXT: Final = 100  # kecamatan, kelurahan and search text: as long as a place name may be
# ``/api/v1/devices``: devices per answer unless ``limit`` says otherwise, and at most.
API_DEFAULT_LIMIT: Final = 500
API_MAX_LIMIT: Final = 1000


@dataclass(frozen=True)
class FleetQuery:
    kecamatan: str | None = None
    kelurahan: str | None = None
    state: str | None = None
    q: str = ""  # part of a device id or a site's name, any case
    open: tuple[str, ...] = ()  # folded kelurahan to open, as "<kecamatan>\x1f<kelurahan>"

    @property
    def filtered(self) -> bool:
        return bool(self.kecamatan or self.kelurahan or self.state or self.q)

    def args(self, open_: Iterable[str] | None = None) -> dict[str, Any]:
        """Back to URL parameters (only those given), with ``open_`` instead of ``open``."""
        out: dict[str, Any] = {k: v for k, v in (
            ("kecamatan", self.kecamatan), ("kelurahan", self.kelurahan),
            ("state", self.state), ("q", self.q)) if v}
        opened = sorted(set(self.open if open_ is None else open_))
        if opened:
            out["open"] = opened
        return out


def _one(args: MultiDict[str, str], key: str, *, text: bool = False) -> str | None:
    """A parameter given at most once; free ``text`` loses its outer spaces, anything else
    is taken exactly as written (" 5" is not a number)."""
    value = single(args, key)
    if len(value) > MAX_TEXT:
        raise QueryError(f"{key} is at most {MAX_TEXT} characters")
    return (value.strip() if text else value) or None


def _filters(args: MultiDict[str, str]) -> FleetQuery:
    state = _one(args, "state")
    if state is not None and state not in STATE_FILTERS:
        raise QueryError(f"state must be one of {', '.join(STATE_FILTERS)}")
    return FleetQuery(kecamatan=_one(args, "kecamatan", text=True),
                      kelurahan=_one(args, "kelurahan", text=True), state=state,
                      q=_one(args, "q", text=True) or "")


def parse_query(args: MultiDict[str, str]) -> FleetQuery:
    """The page's filters and opened places from its query string; empty values count as
    not given."""
    opened = [v for v in args.getlist("open") if v]
    if len(opened) > MAX_OPEN:
        raise QueryError(f"open at most {MAX_OPEN} sub-districts at once")
    if any(SEP not in v or len(v) > 2 * MAX_TEXT + 1 for v in opened):
        raise QueryError("open is '<kecamatan>\\x1f<kelurahan>'")
    return replace(_filters(args), open=tuple(sorted(set(opened))))


def place(kecamatan: str, kelurahan: str) -> str:
    """The key of a kelurahan in ``open``."""
    return kecamatan + SEP + kelurahan


class Entry(NamedTuple):
    """One device of the index: where it is, its state, and its cameras' faults (a tuple,
    like ``DeviceBrief``: thousands per request)."""

    id: str
    kecamatan: str
    kelurahan: str
    site_name: str
    state: str
    camera_faults: tuple[tuple[str, str], ...] = ()  # (camera, state) not streaming

    @property
    def attention(self) -> bool:
        return self.state in ATTENTION_STATES or bool(self.camera_faults)


def camera_faults(reports: tuple[tuple[str, str], ...], state: str
                  ) -> tuple[tuple[str, str], ...]:
    """Cameras of an online box that report anything but streaming (a box that is not online
    already needs attention for itself)."""
    if state != "online":
        return ()
    return tuple((cam, s) for cam, s in reports if s != "streaming")


def entry_of(brief: DeviceBrief, now: datetime) -> Entry:
    state = compute_state(brief, now)
    return Entry(brief.id, brief.kecamatan, brief.kelurahan, brief.site_name or brief.site_id,
                 state, camera_faults(brief.camera_reports, state))


def matches(e: Entry, query: FleetQuery) -> bool:
    if query.kecamatan is not None and e.kecamatan != query.kecamatan:
        return False
    if query.kelurahan is not None and e.kelurahan != query.kelurahan:
        return False
    if query.state == "attention":
        if not e.attention:
            return False
    elif query.state is not None and e.state != query.state:
        return False
    if query.q:
        needle = query.q.casefold()
        return needle in e.id.casefold() or needle in e.site_name.casefold()
    return True


@dataclass
class KelurahanPlan:
    name: str
    key: str  # place(kecamatan, kelurahan)
    counts: Counter[str] = field(default_factory=Counter)
    shown: list[str] = field(default_factory=list)  # ids listed above the fold, by id
    folded: list[str] = field(default_factory=list)  # ids below it, by id
    opened: bool = False  # the folded rows are listed too

    @property
    def rows(self) -> list[str]:
        """Every id the page lists for this kelurahan, in order."""
        return self.shown + self.folded if self.opened else self.shown


@dataclass
class KecamatanPlan:
    name: str
    counts: Counter[str] = field(default_factory=Counter)
    kelurahan: list[KelurahanPlan] = field(default_factory=list)


@dataclass
class Plan:
    groups: list[KecamatanPlan]  # the matching devices by place
    matched: int  # devices matching the filters
    folding: bool  # rows without problems are folded per kelurahan
    totals: Counter[str]  # every device by bucket, whatever the filters
    attention: int  # every device that needs attention, whatever the filters
    places: list[tuple[str, list[str]]]  # every kecamatan with its kelurahan (the choices)
    faults: dict[str, tuple[tuple[str, str], ...]]  # camera faults of matching devices

    @property
    def listed(self) -> list[str]:
        """Every id whose row the page draws."""
        return [i for k in self.groups for kel in k.kelurahan for i in kel.rows]


def plan(entries: Iterable[Entry], query: FleetQuery) -> Plan:
    """One pass over the index: counts of the whole fleet, and kecamatan -> kelurahan of the
    matching devices (places by name, state counts, what each lists and folds). Keeps ids,
    not entries: a city's index is thousands of them."""
    tree: dict[str, dict[str, KelurahanPlan]] = {}
    everywhere: dict[str, set[str]] = {}
    totals: Counter[str] = Counter()
    faults: dict[str, tuple[tuple[str, str], ...]] = {}
    attention = matched = 0
    for e in entries:
        bucket = BUCKET_OF_STATE.get(e.state, "unknown")
        needs = e.attention
        totals[bucket] += 1
        attention += needs
        everywhere.setdefault(e.kecamatan, set()).add(e.kelurahan)
        if not matches(e, query):
            continue
        matched += 1
        kels = tree.setdefault(e.kecamatan, {})
        lg = kels.get(e.kelurahan)
        if lg is None:
            lg = kels[e.kelurahan] = KelurahanPlan(e.kelurahan, place(e.kecamatan, e.kelurahan))
        lg.counts[bucket] += 1
        (lg.shown if needs else lg.folded).append(e.id)
        if e.camera_faults:
            faults[e.id] = e.camera_faults
    folding = matched > INLINE_MAX
    opened = set(query.open)
    groups = []
    for kec in sorted(tree, key=place_key):
        kg = KecamatanPlan(kec)
        for kel in sorted(tree[kec], key=place_key):
            lg = tree[kec][kel]
            if folding:
                lg.shown.sort()
                lg.folded.sort()
                lg.opened = lg.key in opened
            else:  # one list by id, as if nothing could be folded
                lg.shown = sorted(lg.shown + lg.folded)
                lg.folded = []
            kg.counts.update(lg.counts)
            kg.kelurahan.append(lg)
        groups.append(kg)
    places = [(kec, sorted(everywhere[kec], key=place_key))
              for kec in sorted(everywhere, key=place_key)]
    return Plan(groups, matched, folding, totals, attention, places, faults)


# --- /api/v1/devices: the same filters, a page at a time ----------------------------------

@dataclass(frozen=True)
class DevicePage:
    """One page of the device list: devices matching ``filters`` with an id after ``after``
    (the cursor: the last id of the previous page), at most ``limit`` of them."""

    filters: FleetQuery = FleetQuery()
    after: str | None = None
    limit: int = API_DEFAULT_LIMIT

    def args(self, after: str) -> dict[str, Any]:
        """URL parameters of the page after this one (the ``Link: rel="next"`` header)."""
        out = self.filters.args()
        out["after"] = after
        if self.limit != API_DEFAULT_LIMIT:
            out["limit"] = str(self.limit)
        return out


def parse_page(args: MultiDict[str, str]) -> DevicePage:
    """``kecamatan``, ``kelurahan``, ``state``, ``q``, ``after`` and ``limit``; empty values
    count as not given."""
    after = _one(args, "after")
    if after is not None and not DEVICE_ID_RE.fullmatch(after):
        raise QueryError("after is a device id (the last one of the previous page)")
    limit = limit_of(_one(args, "limit"), API_DEFAULT_LIMIT, API_MAX_LIMIT)
    return DevicePage(_filters(args), after, limit)


def select_page(matched: Iterable[str], page: DevicePage) -> tuple[list[str], bool, int]:
    """The ids of the page among the ``matched`` ones, by id (Python's order, the same on
    every database); whether more follow; how many match in all."""
    ordered = sorted(matched)
    start = bisect_right(ordered, page.after) if page.after is not None else 0
    ids = ordered[start:start + page.limit]
    return ids, start + page.limit < len(ordered), len(ordered)
