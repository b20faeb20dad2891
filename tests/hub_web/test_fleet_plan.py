"""What the fleet page lists and folds, and the device API's pages (pure logic)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from werkzeug.datastructures import MultiDict

from hub.web import fleetplan
from hub.web.fleet import DeviceBrief, camera_reports
from hub.web.fleetplan import (
    API_DEFAULT_LIMIT,
    DevicePage,
    Entry,
    FleetQuery,
    QueryError,
    entry_of,
    matches,
    parse_page,
    parse_query,
    place,
    plan,
    select_page,
)

NOW = datetime(2024, 5, 1, 7, 0, 0, tzinfo=UTC)


def entry(device_id: str, state: str = "online", kec: str = "Beji", kel: str = "Kemiri Muka",
          site: str = "", faults: tuple[tuple[str, str], ...] = ()) -> Entry:
    return Entry(device_id, kec, kel, site or f"Tiang {device_id}", state, faults)


def args(**kw: Any) -> MultiDict[str, str]:
    return MultiDict([(k, v) for k, vs in kw.items()
                      for v in (vs if isinstance(vs, list) else [vs])])


# --- the page's query --------------------------------------------------------------------

def test_empty_values_count_as_not_given() -> None:
    q = parse_query(args(kecamatan="", kelurahan=" ", state="", q="  "))
    assert q == FleetQuery() and not q.filtered


def test_query_round_trips_through_its_args() -> None:
    key = place("Beji", "Kemiri Muka")
    q = parse_query(args(kecamatan=" Beji ", state="attention", q="cam", open=[key, key]))
    assert q == FleetQuery(kecamatan="Beji", state="attention", q="cam", open=(key,))
    assert parse_query(MultiDict(q.args())) == q
    assert q.args(open_=[]) == {"kecamatan": "Beji", "state": "attention", "q": "cam"}


@pytest.mark.parametrize("bad", [
    {"state": "broken"}, {"state": " online"}, {"kecamatan": "x" * 101},
    {"kecamatan": ["Beji", "Limo"]}, {"open": "no separator"},
    {"open": [place("K", str(i)) for i in range(fleetplan.MAX_OPEN + 1)]},
])
def test_invalid_query_says_why(bad: dict[str, Any]) -> None:
    with pytest.raises(QueryError):
        parse_query(args(**bad))


# --- attention -----------------------------------------------------------------------------

def brief(state_fields: dict[str, Any], cameras: dict[str, Any] | None = None) -> DeviceBrief:
    fields: dict[str, Any] = {"status": "enrolled", "presence": "unknown", "presence_at": None,
                              "last_health_at": None, "health_interval_s": 10.0,
                              **state_fields}
    return DeviceBrief("cam-001", "s1", "", "Beji", "Kemiri Muka",
                       camera_reports=camera_reports(cameras), **fields)


ONLINE = {"presence": "online", "presence_at": NOW - timedelta(seconds=60),
          "last_health_at": NOW - timedelta(seconds=2)}


def test_a_camera_fault_of_an_online_box_needs_attention() -> None:
    e = entry_of(brief(ONLINE, {"gate": {"fps": 9.9}, "road": {"state": "covered"}}), NOW)
    assert (e.state, e.camera_faults, e.attention) == ("online", (("road", "covered"),), True)
    fine = entry_of(brief(ONLINE, {"gate": {"state": "streaming"}}), NOW)
    assert (fine.camera_faults, fine.attention) == ((), False)
    assert entry_of(brief(ONLINE, None), NOW).attention is False


@pytest.mark.parametrize("fields,state", [
    ({"presence": "offline"}, "offline"),
    ({}, "unknown"),
    ({**ONLINE, "last_health_at": NOW - timedelta(seconds=45)}, "stale"),
])
def test_not_online_needs_attention_without_camera_faults(fields: dict[str, Any],
                                                          state: str) -> None:
    e = entry_of(brief(fields, {"road": {"state": "covered"}}), NOW)
    assert (e.state, e.camera_faults, e.attention) == (state, (), True)


def test_camera_reports_default_to_streaming() -> None:
    assert camera_reports({"road": {"state": "frozen"}, "gate": {"fps": 9.0}, "x": None}) == (
        ("gate", "streaming"), ("road", "frozen"), ("x", "streaming"))
    assert camera_reports(None) == () == camera_reports([1, 2])


def test_decommissioned_needs_no_attention() -> None:
    assert entry_of(brief({"status": "decommissioned"}), NOW).attention is False


def test_filters() -> None:
    e = entry("cam-001", "offline", site="Tiang Margonda")
    assert matches(e, FleetQuery())
    assert matches(e, FleetQuery(kecamatan="Beji", kelurahan="Kemiri Muka", state="offline"))
    assert matches(e, FleetQuery(state="attention"))
    assert not matches(e, FleetQuery(state="online"))
    assert not matches(e, FleetQuery(kecamatan="Limo"))
    assert not matches(e, FleetQuery(kelurahan="Tanah Baru"))
    assert matches(e, FleetQuery(q="MARGONDA")) and matches(e, FleetQuery(q="m-00"))
    assert not matches(e, FleetQuery(q="cinere"))
    assert not matches(entry("cam-002"), FleetQuery(state="attention"))


# --- folding --------------------------------------------------------------------------------

def fleet(n_ok: int) -> list[Entry]:
    out = [entry(f"ok-{i:03d}", kel="Kemiri Muka" if i % 2 else "Tanah Baru")
           for i in range(n_ok)]
    out += [entry("bad-001", "offline"), entry("bad-002", "stale", kec="Limo", kel="Limo"),
            entry("cam-009", faults=(("road", "frozen"),), kel="Tanah Baru"),
            entry("old-001", "decommissioned", kec="", kel="")]
    return out


def test_a_small_set_lists_every_row_and_folds_nothing() -> None:
    p = plan(fleet(10), FleetQuery())
    assert not p.folding and p.matched == 14
    assert sorted(p.listed) == sorted(e.id for e in fleet(10))
    assert all(not kel.folded for k in p.groups for kel in k.kelurahan)
    kemiri = p.groups[0].kelurahan[0]
    assert kemiri.rows == sorted(kemiri.rows)  # by id, as before the fold existed


def test_a_large_set_lists_what_needs_attention_and_folds_the_rest(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fleetplan, "INLINE_MAX", 5)
    p = plan(fleet(10), FleetQuery())
    assert p.folding
    assert sorted(p.listed) == ["bad-001", "bad-002", "cam-009"]
    # Places by name, the unrecorded one last; counts cover folded devices too.
    assert [k.name for k in p.groups] == ["Beji", "Limo", ""]
    beji = p.groups[0]
    assert [kel.name for kel in beji.kelurahan] == ["Kemiri Muka", "Tanah Baru"]
    assert beji.counts == {"online": 11, "offline": 1}
    kemiri, tanah = beji.kelurahan
    assert (kemiri.shown, len(kemiri.folded)) == (["bad-001"], 5)
    assert (tanah.shown, len(tanah.folded)) == (["cam-009"], 5)
    assert p.groups[2].kelurahan[0].folded == ["old-001"]  # decommissioned: folded


def test_an_opened_place_lists_its_folded_rows_after_the_attention_ones(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fleetplan, "INLINE_MAX", 5)
    p = plan(fleet(10), FleetQuery(open=(place("Beji", "Kemiri Muka"),)))
    kemiri = p.groups[0].kelurahan[0]
    assert kemiri.opened and kemiri.rows == ["bad-001"] + [f"ok-{i:03d}" for i in range(1, 10, 2)]
    assert not p.groups[0].kelurahan[1].opened
    assert len(p.listed) == 3 + 5


def test_filters_decide_what_is_counted_and_whether_to_fold(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fleetplan, "INLINE_MAX", 5)
    p = plan(fleet(10), FleetQuery(kecamatan="Beji", kelurahan="Kemiri Muka"))
    assert (p.matched, p.folding) == (6, True)
    p = plan(fleet(10), FleetQuery(state="attention"))
    assert (p.matched, p.folding) == (3, False)
    assert sorted(p.listed) == ["bad-001", "bad-002", "cam-009"]
    assert plan(fleet(10), FleetQuery(q="nothing")).groups == []


def test_whole_fleet_figures_whatever_the_filters() -> None:
    p = plan(fleet(3), FleetQuery(kecamatan="Limo"))
    assert p.places == [("Beji", ["Kemiri Muka", "Tanah Baru"]), ("Limo", ["Limo"]), ("", [""])]
    assert p.totals == {"online": 4, "offline": 1, "degraded": 1, "decommissioned": 1}
    assert p.attention == 3 and p.matched == 1
    assert plan(fleet(3), FleetQuery()).faults == {"cam-009": (("road", "frozen"),)}
    assert p.faults == {}  # only of the devices the page lists


# --- /api/v1/devices pages --------------------------------------------------------------------

def test_page_defaults_and_errors() -> None:
    assert parse_page(args()) == DevicePage(FleetQuery(), None, API_DEFAULT_LIMIT)
    assert parse_page(args(limit="", after="")) == DevicePage()
    assert parse_page(args(limit="7", after="cam-001", state="offline")) == DevicePage(
        FleetQuery(state="offline"), "cam-001", 7)
    for bad in ({"limit": "0"}, {"limit": "1001"}, {"limit": " 5"}, {"limit": "x"},
                {"after": "Bad_Id"}, {"after": " cam-001"}, {"state": "nope"}):
        with pytest.raises(QueryError):
            parse_page(args(**bad))


def test_pages_walk_the_matching_devices_by_id() -> None:
    ids = [f"cam-{i:03d}" for i in range(10, 0, -1)]  # in the database's order: any
    page = DevicePage(limit=4)
    assert select_page(ids, page) == (["cam-001", "cam-002", "cam-003", "cam-004"], True, 10)
    assert select_page(ids, DevicePage(after="cam-008", limit=4)) == (
        ["cam-009", "cam-010"], False, 10)
    assert select_page(ids, DevicePage(after="cam-006", limit=4)) == (
        ["cam-007", "cam-008", "cam-009", "cam-010"], False, 10)
    # The cursor need not be a device that still exists.
    assert select_page(ids, DevicePage(after="cam-0045", limit=1))[0] == ["cam-005"]
    # Python's order, whatever the database's collation does with "-".
    assert select_page(["cam1", "cam-2", "cam-1"], DevicePage())[0] == ["cam-1", "cam-2",
                                                                         "cam1"]
    assert select_page([], page) == ([], False, 0)
    offline = DevicePage(FleetQuery(state="offline"), limit=2)
    assert page.args(after="cam-004") == {"after": "cam-004", "limit": "4"}
    assert offline.args(after="x") == {"state": "offline", "after": "x", "limit": "2"}
    assert DevicePage().args(after="x") == {"after": "x"}
