"""Structured logs: one JSON object a line, fixed and per-request fields, no secrets, the
request id echoed by the web app, and a log file that survives logrotate."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.logs import (
    TEXT_FORMAT,
    JsonFormatter,
    RedactingTextFormatter,
    redact_text,
    resolve_format,
    setup_logging,
)
from hub.influx import InfluxClient, InfluxConfig
from hub.logs import REQUEST_ID_HEADER, log_context
from hub.registry.db import open_registry
from hub.web import create_app

TOKEN = "dcor_0123456789ab_" + "S" * 43
REPO = Path(__file__).resolve().parents[2]


def _record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("dcor.test", logging.WARNING, __file__, 1, msg, args, None)
    for k, v in extra.items():
        setattr(rec, k, v)
    return rec


def test_a_json_line_has_the_fixed_fields_and_the_extras():
    fmt = JsonFormatter({"service": "dcor-agent", "device": "beji-01"},
                        context=lambda: {"request_id": "r-1", "empty": None})
    line = json.loads(fmt.format(_record("outbox %d rows", 12, camera="cam1", depth=12)))
    assert line["msg"] == "outbox 12 rows" and line["level"] == "warning"
    assert line["logger"] == "dcor.test" and line["ts"].endswith("Z")
    assert (line["service"], line["device"], line["request_id"]) == (
        "dcor-agent", "beji-01", "r-1")
    assert (line["camera"], line["depth"]) == ("cam1", 12) and "empty" not in line


@pytest.mark.parametrize("text", [
    f"refused token {TOKEN} from 10.0.0.1",
    f"Authorization: Bearer {TOKEN}",
    "connect password=hunter2-very-secret failed",
    "login with token: abcdefabcdef",
    "postgresql+psycopg://dcor:s3cret-pw@db.local/dcor unreachable",
])
def test_secrets_in_the_text_are_masked(text):
    out = redact_text(text)
    for secret in (TOKEN, "S" * 43, "hunter2-very-secret", "abcdefabcdef", "s3cret-pw"):
        assert secret not in out
    assert "***" in out


def test_secret_looking_extra_keys_and_tracebacks_are_masked():
    fmt = JsonFormatter()
    try:
        raise ValueError(f"bad token {TOKEN}")
    except ValueError:
        rec = _record("failed", password="hunter2", api_token=TOKEN, user="budi")
        rec.exc_info = sys.exc_info()
    line = fmt.format(rec)
    assert TOKEN not in line and "hunter2" not in line
    data = json.loads(line)
    assert data["password"] == data["api_token"] == "***" and data["user"] == "budi"
    assert "ValueError" in data["exc"]
    assert TOKEN not in RedactingTextFormatter(TEXT_FORMAT).format(_record(f"x {TOKEN}"))


def test_the_format_comes_from_the_flag_then_the_environment():
    assert resolve_format(None, {}) == "text"
    assert resolve_format(None, {"DCOR_LOG_FORMAT": "JSON"}) == "json"
    assert resolve_format("text", {"DCOR_LOG_FORMAT": "json"}) == "text"
    with pytest.raises(ValueError, match="text, json"):
        resolve_format(None, {"DCOR_LOG_FORMAT": "xml"})


@pytest.fixture
def restore_root_logging():
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        root.removeHandler(h)
        h.close()
    for h in saved:
        root.addHandler(h)
    root.setLevel(level)


@pytest.mark.skipif(shutil.which("logrotate") is None, reason="logrotate not installed")
def test_the_log_file_survives_logrotate(tmp_path, restore_root_logging):
    """The agent's file handler follows the rotation the installed logrotate config does
    (same file, with paths and the user made to fit this test)."""
    log_dir = tmp_path / "log"
    setup_logging("INFO", "text", fields={"device": "beji-01"}, log_file=log_dir / "agent.log")
    log = logging.getLogger("dcor.agent")
    log.info("before rotation")
    conf = (REPO / "firmware_configs/logrotate/dcor-agent").read_text()
    conf = conf.replace("/var/log/dcor-agent", str(log_dir)).replace(
        "dcor-agent dcor-agent", "root root")
    (tmp_path / "logrotate.conf").write_text(conf)
    proc = subprocess.run(["logrotate", "--force", "--state", str(tmp_path / "state"),
                           str(tmp_path / "logrotate.conf")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    log.info("after rotation")
    rotated = json.loads((log_dir / "agent.log.1").read_text().splitlines()[-1])
    current = json.loads((log_dir / "agent.log").read_text().splitlines()[-1])
    assert rotated["msg"] == "before rotation" and current["msg"] == "after rotation"
    assert current["device"] == "beji-01"  # the file is JSON even when stderr is text
    assert (log_dir / "agent.log").stat().st_mode & 0o777 == 0o640


@pytest.fixture
def app(tmp_path):
    registry = open_registry(f"sqlite:///{tmp_path / 'r.sqlite'}")
    influx = InfluxClient(InfluxConfig(url="http://127.0.0.1:9", database="x", timeout_s=0.2))
    flask_app = create_app(registry=registry, influx=influx)
    yield flask_app
    registry.close()
    influx.close()


def test_every_answer_carries_a_request_id_the_proxy_may_choose(app):
    client = app.test_client()
    made = client.get("/api/v1/devices").headers[REQUEST_ID_HEADER]
    assert len(made) == 32
    assert client.get("/api/v1/devices").headers[REQUEST_ID_HEADER] != made
    given = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
    assert client.get("/api/v1/devices", headers={REQUEST_ID_HEADER: given}
                      ).headers[REQUEST_ID_HEADER] == given
    # Not a sane id (a log-injection attempt, or just too long): replaced, not echoed.
    for bad in ('x" level="critical', "a" * 65):
        got = client.get("/healthz", headers={REQUEST_ID_HEADER: bad}).headers
        assert got[REQUEST_ID_HEADER] != bad and len(got[REQUEST_ID_HEADER]) == 32


def test_log_lines_of_a_request_carry_its_id_and_device(app, caplog):
    seen: list[dict[str, object]] = []

    @app.get("/api/v1/_probe/<device_id>")
    def probe(device_id: str) -> str:
        seen.append(dict(log_context()))
        return "ok"

    with caplog.at_level(logging.INFO, logger="dcor.hub.access"):
        resp = app.test_client().get("/api/v1/devices/no-such-box-1")
    assert resp.status_code == 404
    access = [r for r in caplog.records if r.name == "dcor.hub.access"]
    assert access and access[0].status == 404  # refusals are logged at info
    assert access[0].path == "/api/v1/devices/no-such-box-1"
    app.test_client().get("/api/v1/_probe/beji-margonda-01",
                          headers={REQUEST_ID_HEADER: "abcdefgh-1234"})
    assert seen == [{"request_id": "abcdefgh-1234", "device": "beji-margonda-01"}]
    assert log_context() == {}  # outside a request
