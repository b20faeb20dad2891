"""The Grafana dashboard (deploy/grafana) over the hub's InfluxDB: every panel's InfluxQL runs
against a real influxd holding points written by the ingest's own line builders, and returns
data; the provisioning files fit together. And the InfluxDB deployment config starts influxd
and its setup script (retention, continuous query) runs."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass

import pytest
import yaml

from dcor_wire import payloads
from dcor_wire.media import SnapshotMeta
from hub.ingest import points
from hub.localservices import InfluxProcess
from tests.ops.installkit import REPO

GRAFANA = REPO / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "dcor-fleet.json"
INFLUX_DEPLOY = REPO / "deploy" / "hub" / "influxdb"


@dataclass(frozen=True)
class Site:
    kecamatan: str
    kelurahan: str


FLEET = {"beji-pole-01": Site("Beji", "Kemiri Muka"), "beji-pole-02": Site("Beji", "Beji Timur"),
         "cmg-pole-01": Site("Cimanggis", "Tugu")}


def demo_lines(now_ms: int) -> list[str]:
    """A few minutes of a small fleet, through the same builders the ingest uses."""
    out: list[str] = []
    seq = 0
    for i, (dev, site) in enumerate(FLEET.items()):
        for k in range(6):
            seq += 1
            ts = now_ms - (5 - k) * 30_000
            out += points.health_lines(dev, site, payloads.Health(
                ts=ts, seq=seq, uptime_s=1000.0 + k, cpu_pct=20.0 + i, temp_c=55.0 + k,
                disk_free_mb=9000.0 - k, mem_pct=40.0, outbox_depth=k * i,
                outbox_oldest_s=float(k), outbox_dropped=k, reconnects=k // 2,
                throttled_now=(dev != "beji-pole-01"), undervoltage_now=(k == 5),
                cameras={"cam1": payloads.CameraHealth(
                    state="frozen" if (dev == "beji-pole-02" and k > 3) else "streaming",
                    fps=9.5, inference_ms=42.0)}))
            seq += 1
            out += points.detections_lines(dev, site, payloads.Detections(
                ts=ts, seq=seq, camera="cam1", interval_ms=30_000, frames=300,
                counts={"person": 3 + k, "car": 1}, tracks={"person": 5, "car": 2},
                zones={"crossing": {"person": 2 + k}},
                crossings={"line1": {"car": payloads.LineCount(right=2, left=1)}},
                max_score={"person": 0.8}))
        seq += 1
        out += points.event_lines(dev, site, payloads.Event(
            ts=now_ms - 60_000, seq=seq, id=f"ev-{dev}", camera="cam1", kind="crowd",
            status="raised", count=9))
        seq += 1
        out += points.snapshot_lines(dev, site, "cam1", SnapshotMeta(
            ts=now_ms - 50_000, seq=seq, id=f"snap-{dev}"), 48_000)
        seq += 1
        out += points.config_reported_lines(dev, site, payloads.ConfigReported(
            ts=now_ms - 40_000, seq=seq, status="applied", version=3, desired_version=3))
    return out


def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text())


def panels_with_queries() -> list[dict]:
    return [p for p in dashboard()["panels"] if p.get("targets")]


def render(query: str, kecamatan: str = ".*") -> str:
    """What Grafana sends: its macros and variables filled in."""
    assert not re.findall(r"\$(?!timeFilter|__interval|kecamatan|class)\w+", query), query
    return (query.replace("$timeFilter", "time > now() - 1h").replace("$__interval", "1m")
            .replace("$kecamatan", kecamatan).replace("$class", ".*"))


def has_values(result: dict) -> bool:
    for r in result.get("results", []):
        for s in r.get("series", []):
            if any(v is not None for row in s.get("values", []) for v in row[1:]):
                return True
    return False


@pytest.fixture(scope="module")
def demo_db(influxd: InfluxProcess) -> str:
    name = f"grafana_{int(time.time())}"
    influxd.create_database(name)
    influxd.write("\n".join(demo_lines(int(time.time() * 1000))), name)
    yield name
    influxd.drop_database(name)


def test_the_dashboard_is_provisionable():
    dash = dashboard()
    assert dash["uid"] == "dcor-fleet" and dash["timezone"] == "Asia/Jakarta"
    ds = yaml.safe_load((GRAFANA / "provisioning/datasources/dcor-influxdb.yaml").read_text())
    uid = ds["datasources"][0]["uid"]
    assert ds["datasources"][0]["jsonData"]["dbName"] == "dcor"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    for p in dash["panels"]:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["x"] + g["w"] <= 24, p["title"]
        if p["type"] != "row":
            assert p["datasource"]["uid"] == uid, p["title"]
            assert all(t["rawQuery"] and t["query"] for t in p["targets"]), p["title"]
    prov = yaml.safe_load((GRAFANA / "provisioning/dashboards/dcor.yaml").read_text())
    assert prov["providers"][0]["options"]["path"].endswith("deploy/grafana/dashboards")
    titles = {p["title"] for p in dash["panels"] if p["type"] == "row"}
    assert titles == {"Fleet health", "Ingest rates", "Detections"}


@pytest.mark.parametrize("kecamatan", [".*", "Beji"])
def test_every_panel_query_returns_data(influxd, demo_db, kecamatan):
    empty, failed = [], []
    for panel in panels_with_queries():
        for target in panel["targets"]:
            q = render(target["query"], kecamatan)
            try:
                result = influxd.query(q, db=demo_db)
            except Exception as exc:  # collect every failing panel, not only the first
                failed.append(f"{panel['title']}: {exc}")
                continue
            if not has_values(result):
                empty.append(f"{panel['title']} [{target['refId']}]: {q}")
    assert not failed, "\n".join(failed)
    assert not empty, "no data:\n" + "\n".join(empty)


def test_the_kecamatan_filter_narrows_the_answer(influxd, demo_db):
    panel = next(p for p in panels_with_queries()
                 if p["title"] == "Objects tracked per kecamatan (range)")
    tags = {s["tags"]["kecamatan"]
            for s in influxd.query(render(panel["targets"][0]["query"], "Beji"),
                                   db=demo_db)["results"][0]["series"]}
    assert tags == {"Beji"}
    boxes = next(p for p in panels_with_queries() if p["title"].startswith("Boxes reporting "
                                                                             "health"))
    result = influxd.query(render(boxes["targets"][0]["query"]), db=demo_db)
    assert result["results"][0]["series"][0]["values"][0][1] == len(FLEET)


def test_the_template_variables_list_the_fleet(influxd, demo_db):
    found = {}
    for var in dashboard()["templating"]["list"]:
        result = influxd.query(var["query"], db=demo_db)
        found[var["name"]] = {v[1] for s in result["results"][0]["series"] for v in s["values"]}
    assert found == {"kecamatan": {"Beji", "Cimanggis"}, "class": {"person", "car"}}


class DeployedInflux(InfluxProcess):
    """influxd running deploy/hub/influxdb/influxdb.conf (only its folders and ports moved)."""

    def config_text(self) -> str:
        text = (INFLUX_DEPLOY / "influxdb.conf").read_text()
        text = text.replace("/var/lib/influxdb", str(self.data_dir))
        text = text.replace("127.0.0.1:8088", f"127.0.0.1:{self.rpc_port}")
        return text.replace("127.0.0.1:8086", f"127.0.0.1:{self.port}")


def test_the_influxdb_deployment_config_and_setup(tmp_path):
    with DeployedInflux(data_dir=tmp_path / "influx") as server:
        # As `grep -v '^--' setup.influxql | influx` runs it: one statement a line.
        for line in (INFLUX_DEPLOY / "setup.influxql").read_text().splitlines():
            if line.strip() and not line.startswith("--"):
                server.query(line.strip().rstrip(";"))
        rps = server.query('SHOW RETENTION POLICIES ON "dcor"')["results"][0]["series"][0]
        by_name = {row[0]: row for row in rps["values"]}
        assert by_name["raw_90d"][1] == "2160h0m0s" and by_name["raw_90d"][-1] is True
        assert "hourly_1y" in by_name
        cqs = server.query("SHOW CONTINUOUS QUERIES")["results"][0]["series"]
        assert any(s["name"] == "dcor" and s["values"] for s in cqs)
        # The hub writes without naming a retention policy: points land in raw_90d.
        server.write("\n".join(demo_lines(int(time.time() * 1000))[:5]), "dcor")
        got = server.query('SELECT count("uptime_s") FROM "dcor"."raw_90d"."health"')
        assert got["results"][0]["series"][0]["values"][0][1] >= 1
