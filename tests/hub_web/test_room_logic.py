"""The pure parts of the wall, the map and the device page: tiles and roll-ups, the fleet
stream's versions and differences, map projection and GeoJSON, InfluxQL and SVG charts."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from hub.web import livefleet as lf
from hub.web import mapgeo, series, svgchart
from hub.web.fleetfeed import FleetFeed, parse_event_id, stream


def dev(id_: str, state: str = "online", kec: str = "Beji", kel: str = "Kukusan",
        cams: dict[str, str] | None = None, site: str = "s1") -> dict[str, Any]:
    return {"id": id_, "site": site, "site_name": "", "kecamatan": kec, "kelurahan": kel,
            "state": state,
            "cameras": [{"camera": c, "state": s, "latest_snapshot": None}
                        for c, s in (cams or {}).items()]}


@pytest.mark.parametrize("device_state,camera_state,look", [
    ("online", "streaming", ("streaming", "ok")),
    ("online", "frozen", ("frozen", "bad")),
    ("online", "detector_stalled", ("detector_stalled", "warn")),
    ("online", "something-new", ("something-new", "warn")),
    ("offline", "unknown", ("offline", "bad")),  # nobody watches the camera of a dead box
    ("stale", "unknown", ("stale", "warn")),
    ("online", None, ("online", "ok")),
    ("decommissioned", None, ("decommissioned", "retired")),
])
def test_tile_look(device_state: str, camera_state: str | None,
                   look: tuple[str, str]) -> None:
    assert lf.tile_look(device_state, camera_state) == look


def test_tiles_are_in_place_order_and_boxes_without_cameras_get_one() -> None:
    pic = lf.picture_of([dev("b-2", kec="Limo", cams={"cam1": "streaming"}),
                         dev("a-1", kec="Beji", cams={"cam2": "frozen", "cam1": "streaming"}),
                         dev("z-9", kec=""),
                         dev("c-3", kec="Beji")])
    # Kecamatan, kelurahan, device, camera; a place not recorded goes last.
    assert [t.key for t in lf.wall_tiles(pic)] == ["a-1/cam1", "a-1/cam2", "c-3", "b-2/cam1",
                                                   "z-9"]
    assert [t.key for t in lf.wall_tiles(pic, "Limo")] == ["b-2/cam1"]


@pytest.mark.parametrize("count,size", [(1, "xl"), (12, "xl"), (13, "l"), (80, "m"),
                                        (200, "s"), (420, "xs"), (600, "xxs")])
def test_tile_size_fits_the_count(count: int, size: str) -> None:
    assert lf.tile_size(count) == size


def test_rollup_counts_and_worst_per_place() -> None:
    pic = lf.picture_of([dev("a", kel="Kukusan"), dev("b", "offline", kel="Kukusan"),
                         dev("c", "stale", kel="Beji"), dev("d", kec="Limo", kel="Limo")])
    groups = lf.rollup(pic)
    assert [g.name for g in groups] == ["Beji", "Limo"]
    beji = groups[0]
    assert (beji.counts["online"], beji.counts["offline"], beji.counts["degraded"]) == (1, 1, 1)
    assert [(k.name, k.worst) for k in beji.kelurahan] == [("Beji", "degraded"),
                                                           ("Kukusan", "offline")]
    assert groups[1].worst == "online"
    r = lf.rollup_json(pic)
    assert r["total"]["online"] == 2 and r["kel"]["Beji" + lf.SEP + "Kukusan"]["offline"] == 1


def test_site_states_take_the_worst_device() -> None:
    pic = lf.picture_of([dev("a", site="s1"), dev("b", "offline", site="s1"),
                         dev("c", site="s2"), dev("d", "decommissioned", site="s3")])
    assert lf.site_states(pic) == {"s1": "offline", "s2": "online", "s3": "decommissioned"}


def test_diff_names_changed_new_and_removed_devices() -> None:
    old = lf.picture_of([dev("a"), dev("b"), dev("c")])
    new = lf.picture_of([dev("a"), dev("b", "offline"), dev("d")])
    changed, removed = lf.diff(old, new)
    assert [e["id"] for e in changed] == ["b", "d"] and removed == ["c"]


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_feed_versions_only_on_change_and_merges_history() -> None:
    pictures = [lf.picture_of([dev("a"), dev("b")])]
    clock = Clock()
    alerts = ["a1:firing"]
    feed = FleetFeed(lambda: (pictures[-1], "t", alerts[-1]), poll_s=1.0, monotonic=clock)
    assert feed.current()[0] == 1
    clock.t = 5  # stale: rebuilt, unchanged, same version
    assert feed.current()[0] == 1
    pictures.append(lf.picture_of([dev("a", "offline"), dev("b")]))
    clock.t = 10
    assert feed.current()[0] == 2
    pictures.append(lf.picture_of([dev("a", "offline"), dev("c")]))
    clock.t = 15
    assert feed.current()[0] == 3
    version, changed, removed, alerts_changed = feed.since(1) or (0, [], [], True)
    assert version == 3 and [e["id"] for e in changed] == ["a", "c"] and removed == ["b"]
    assert not alerts_changed
    assert feed.since(3) == (3, [], [], False)
    assert feed.since(0) is None  # older than the history: the whole picture again
    alerts.append("a1:acknowledged")  # an acknowledgement alone is a change too
    clock.t = 20
    assert feed.current()[0] == 4 and feed.since(3) == (4, [], [], True)


def test_stream_starts_with_the_whole_picture_then_pings() -> None:
    clock = Clock()
    feed = FleetFeed(lambda: (lf.picture_of([dev("a")]), "12:00", ""), monotonic=clock)
    feed.wait_beyond = lambda version, timeout: False  # type: ignore[method-assign]
    ticks = itertools.count(0.0, 1.0)  # every look at the clock: one second later
    out = list(stream(feed, None, heartbeat_s=5, max_age_s=60,
                      monotonic=lambda: next(ticks)))
    first = out[0]
    assert first.startswith("retry: 2000\n\n") and "event: fleet" in first
    data = json.loads(first.split("data: ", 1)[1])
    assert data["full"] and [d["id"] for d in data["devices"]] == ["a"]
    assert any("event: ping" in chunk for chunk in out[1:])


@pytest.mark.parametrize("value,epoch,version", [
    ("ab12-7", "ab12", 7), ("zz-7", "ab12", None), ("ab12-x", "ab12", None), (None, "e", None),
    ("ab12", "ab12", None)])
def test_parse_event_id(value: str | None, epoch: str, version: int | None) -> None:
    assert parse_event_id(value, epoch) == version


# --- map ------------------------------------------------------------------------------------

def test_projection_keeps_proportions_and_north_up() -> None:
    proj = mapgeo.fit([(106.70, -6.30), (106.90, -6.45)])
    assert proj is not None
    (x0, y0), (x1, y1) = proj.xy((106.70, -6.30)), proj.xy((106.90, -6.45))
    assert (x0, y0) == (mapgeo.PAD, mapgeo.PAD) and x1 > x0 and y1 > y0  # south is down
    assert x1 == pytest.approx(mapgeo.WIDTH - mapgeo.PAD, abs=0.2)
    ratio = (y1 - y0) / (x1 - x0)
    assert ratio == pytest.approx(0.15 / (0.20 * 0.99383), rel=0.01)
    assert mapgeo.fit([]) is None


def test_outline_is_a_closed_path_around_the_sites() -> None:
    pts = [(0.0, 0.0), (100.0, 0.0), (50.0, 80.0), (50.0, 20.0)]
    assert mapgeo.convex_hull(pts) == [(0.0, 0.0), (100.0, 0.0), (50.0, 80.0)]
    d = mapgeo.outline(pts)
    assert d.startswith("M") and d.endswith("Z") and d.count("L") == 2
    assert mapgeo.outline([(10.0, 10.0)]).startswith("M-12.0,-12.0H32.0")


def test_geojson_polygons_multipolygons_names_and_thinning() -> None:
    ring = [[106.8 + i * 1e-4, -6.4] for i in range(1000)] + [[106.8, -6.39], [106.8, -6.4]]
    doc = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {"WADMKC": "Beji"},
         "geometry": {"type": "Polygon", "coordinates": [ring]}},
        {"type": "Feature", "properties": {},
         "geometry": {"type": "MultiPolygon", "coordinates": [[ring[:5]], [ring[:6]]]}}]}
    areas = mapgeo.parse_boundaries(json.dumps(doc).encode())
    assert [a.name for a in areas] == ["Beji", "#2"]
    assert len(areas[0].rings[0]) <= mapgeo.MAX_RING_POINTS and len(areas[1].rings) == 2
    assert mapgeo.areas_from_json(mapgeo.areas_json(areas)) == areas


@pytest.mark.parametrize("doc,message", [
    (b"not json", "not JSON"),
    (b"[]", "JSON object"),
    (json.dumps({"type": "Point", "coordinates": [1, 2]}).encode(), "only Polygon"),
    (json.dumps({"type": "Polygon", "coordinates": [[[1, 2], [3, 4], [1, 2]]]}).encode(),
     "at least 4"),
    (json.dumps({"type": "Polygon", "coordinates": [[[-6.4, 106.8]] * 4]}).encode(),
     "longitude, latitude"),
    (json.dumps({"type": "FeatureCollection", "features": []}).encode(), "no features"),
])
def test_geojson_refusals_say_what_to_fix(doc: bytes, message: str) -> None:
    with pytest.raises(mapgeo.GeoJSONError, match=message):
        mapgeo.parse_boundaries(doc)


# --- device history -------------------------------------------------------------------------

def test_queries_downsample_with_group_by_time() -> None:
    r = series.parse_range("24h")
    q = series.health_query("cam-001", r)
    assert 'mean("cpu_pct") AS "cpu_pct"' in q and 'max("outbox_depth")' in q
    assert "\"device\" = 'cam-001' AND time > now() - 86400s" in q
    assert q.endswith("GROUP BY time(15m) fill(none)")
    assert series.camera_query("cam-001", series.RANGES["7d"]).endswith(
        'GROUP BY time(1h), "camera" fill(none)')
    assert series.parse_range("1y").key == "1h"
    with pytest.raises(ValueError):
        series.health_query("x' OR 1=1 --", r)


def test_results_split_per_field_and_camera() -> None:
    health = [{"columns": ["time", "cpu_pct", "temp_c", "outbox_depth"],
               "values": [[1000, 12.5, None, 3], [2000, 13.0, 50.0, 0]]}]
    out = series.split_health(health)
    assert out["cpu_pct"][""] == [(1000, 12.5), (2000, 13.0)]
    assert out["temp_c"][""] == [(2000, 50.0)]
    cams = [{"tags": {"camera": "cam2"}, "columns": ["time", "fps", "inference_ms"],
             "values": [[1000, 5.0, None]]},
            {"tags": {"camera": "cam1"}, "columns": ["time", "fps", "inference_ms"],
             "values": [[1000, 4.0, 40.0]]}]
    split = series.split_cameras(cams)
    assert list(split["fps"]) == ["cam1", "cam2"] and split["inference_ms"] == {
        "cam1": [(1000, 40.0)]}
    counts = [{"tags": {"camera": "cam1", "class": "car"}, "columns": ["time", "count", "peak"],
               "values": [[0, 40, 9]]},
              {"tags": {"camera": "cam1", "class": "bus"}, "columns": ["time", "count", "peak"],
               "values": [[0, 2, 1]]}]
    assert [r["class"] for r in series.count_rows(counts)] == ["car", "bus"]


@pytest.mark.parametrize("value,top", [(0.3, 0.5), (7, 10), (12, 20), (24, 25), (100, 100),
                                       (0, 1.0)])
def test_nice_max(value: float, top: float) -> None:
    assert svgchart.nice_max(value) == pytest.approx(top)


def test_line_chart_places_points_and_breaks_at_gaps() -> None:
    pts = [(0, 0.0), (60_000, 10.0), (120_000, 20.0), (600_000, 5.0)]
    chart = svgchart.line_chart({"": pts}, 0, 600_000, 60, lambda v: f"{v:.0f}")
    d = chart.lines[0].d
    left, _top, right, bottom = chart.plot
    assert d.startswith(f"M{left},{bottom}h0")  # 0 at the bottom left
    assert d.count("M") == 2 and d.count("L") == 2  # the 8-minute gap breaks the line
    assert f"{right}," in d
    assert [label for _y, label in chart.y_ticks] == ["0", "5", "10", "15", "20"]
    assert not chart.empty and chart.lines[0].last == 5.0
    assert svgchart.line_chart({}, 0, 1000, 60, str).empty
