"""The local-services harness: real brokers and databases start, serve, restart and die."""

from __future__ import annotations

import os
import queue
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from hub.localservices import (
    APT_HINT,
    InfluxProcess,
    MosquittoProcess,
    ServiceNotInstalledError,
    ServiceStartError,
    free_port,
    mqtt_connack,
    wait_until,
)

pytestmark = pytest.mark.integration

Received = queue.Queue[mqtt.MQTTMessage]


@pytest.fixture
def mqtt_client() -> Iterator[Callable[[int], tuple[mqtt.Client, Received]]]:
    """``connect(port)`` -> a connected MQTT 5 client and the queue its messages land in."""
    clients: list[mqtt.Client] = []

    def connect(port: int) -> tuple[mqtt.Client, Received]:
        got: Received = queue.Queue()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
        client.on_message = lambda _c, _u, msg: got.put(msg)
        client.connect("127.0.0.1", port)
        client.loop_start()
        clients.append(client)
        wait_until(client.is_connected, 5, message="MQTT client connected")
        return client, got

    yield connect
    for client in clients:
        client.disconnect()
        client.loop_stop()


def _subscribe(client: mqtt.Client, topic: str) -> None:
    acked: queue.Queue[bool] = queue.Queue()
    client.on_subscribe = lambda *_args: acked.put(True)
    client.subscribe(topic, qos=1)
    acked.get(timeout=5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A reaped child is gone; an unreaped zombie still answers kill(0), so look closer.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split(") ")[1][0] != "Z"


def test_mqtt5_publish_receive_on_session_broker(mosquitto, mqtt_client, device_id):
    client, got = mqtt_client(mosquitto.port)
    topic = f"dcor/v1/{device_id}/health"
    _subscribe(client, topic)
    client.publish(topic, b'{"v":1}', qos=1).wait_for_publish(5)
    msg = got.get(timeout=5)
    assert (msg.topic, msg.payload) == (topic, b'{"v":1}')
    assert mosquitto.port != 1883


def test_influx_write_then_query(influxd, influx_db):
    influxd.write("health,device=d1 cpu=12.5,seq=7i 1700000000000", influx_db)
    result = influxd.query("SELECT cpu, seq FROM health", influx_db)
    series = result["results"][0]["series"][0]
    assert series["columns"] == ["time", "cpu", "seq"]
    assert series["values"] == [[1700000000000, 12.5, 7]]
    assert influxd.port not in (8086, 8088) and influxd.rpc_port != 8088


def test_influx_db_is_unique_per_test(influxd, influx_db):
    names = influxd.query("SHOW DATABASES")["results"][0]["series"][0]["values"]
    assert [influx_db] in names
    assert influx_db.startswith("t_") and len(influx_db) == 10


def test_mosquitto_restart_keeps_port_and_persisted_retained(mosquitto_factory, mqtt_client):
    broker = mosquitto_factory(persistence=True)
    port, first_pid = broker.port, broker.pid
    client, _ = mqtt_client(port)
    client.publish("keep/me", b"retained", qos=1, retain=True).wait_for_publish(5)

    broker.restart()  # graceful: Mosquitto saves its database on SIGTERM

    assert (broker.port, broker.is_running()) == (port, True)
    assert broker.pid != first_pid
    assert (broker.data_dir / "mosquitto.db").exists()
    client2, got = mqtt_client(port)
    _subscribe(client2, "keep/me")
    assert got.get(timeout=5).payload == b"retained"


def test_mosquitto_kill_is_abrupt_and_restart_recovers(mosquitto_factory):
    broker = mosquitto_factory()
    pid = broker.pid
    assert pid is not None
    broker.kill()
    assert not broker.is_running() and not _alive(pid)
    assert not mqtt_connack(broker.port)
    broker.restart()
    assert mqtt_connack(broker.port)


def test_pause_makes_broker_hang_until_resume(mosquitto_factory):
    broker = mosquitto_factory()
    broker.pause()
    # The kernel still accepts the TCP connection; nobody answers CONNECT.
    assert not mqtt_connack(broker.port, timeout=0.3)
    broker.resume()
    assert mqtt_connack(broker.port)


def test_stop_of_a_paused_service_still_ends_it(mosquitto_factory):
    broker = mosquitto_factory()
    pid = broker.pid
    assert pid is not None
    broker.pause()
    started = time.monotonic()
    broker.stop(timeout=5)
    assert time.monotonic() - started < 3
    assert not _alive(pid)


def test_influx_restart_keeps_port_and_data(influxd_factory):
    server = influxd_factory()
    port = server.port
    server.create_database("keep")
    server.write("m v=1i 1700000000000", "keep")
    server.kill()  # a crash: the WAL must bring the point back
    server.restart()
    assert server.port == port
    values = server.query("SELECT v FROM m", "keep")["results"][0]["series"][0]["values"]
    assert values == [[1700000000000, 1]]


def test_close_removes_its_own_data_dir_and_context_manager_stops():
    with InfluxProcess() as server:
        data_dir, pid = server.data_dir, server.pid
        assert data_dir.is_dir() and pid is not None
    assert not data_dir.exists()
    assert not _alive(pid)


def test_missing_binary_names_the_debian_packages():
    with pytest.raises(ServiceNotInstalledError) as err:
        MosquittoProcess(binary="/nonexistent/mosquitto").start()
    assert APT_HINT in str(err.value)
    assert "apt-get install -y mosquitto mosquitto-clients influxdb" in str(err.value)


def test_start_failure_reports_the_log_tail(tmp_path):
    fake = tmp_path / "fake-mosquitto"
    fake.write_text("#!/bin/sh\necho 'Error: boom on startup' >&2\nexit 3\n")
    fake.chmod(0o755)
    broker = MosquittoProcess(port=1, binary=str(fake), data_dir=tmp_path / "d")
    with pytest.raises(ServiceStartError, match=r"(?s)exited with code 3.*boom on startup"):
        broker.start()


def test_start_timeout_kills_and_reports(tmp_path):
    fake = tmp_path / "fake-influxd"
    fake.write_text("#!/bin/sh\necho 'still loading shards'\nexec sleep 30\n")
    fake.chmod(0o755)
    server = InfluxProcess(port=1, binary=str(fake), data_dir=tmp_path / "d",
                           startup_timeout=0.3)
    with pytest.raises(ServiceStartError, match=r"(?s)not ready within.*still loading shards"):
        server.start()
    assert not server.is_running()


def test_wait_until_returns_value_or_raises():
    calls: list[int] = []

    def third_time() -> int:
        calls.append(1)
        return len(calls) if len(calls) >= 3 else 0

    assert wait_until(third_time, timeout=2, interval=0.01) == 3
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="never"):
        wait_until(lambda: False, timeout=0.1, interval=0.02, message="never")
    assert 0.1 <= time.monotonic() - started < 1


def test_no_service_outlives_its_object():
    broker = MosquittoProcess().start()
    pid = broker.pid
    assert pid is not None
    broker.close()
    assert not _alive(pid)


@pytest.mark.parametrize("service", [MosquittoProcess, InfluxProcess])
def test_picked_port_taken_before_start_is_picked_again(service):
    server = service()
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", server.port))
    squatter.listen()
    try:
        with server:
            assert server.port != squatter.getsockname()[1]
            assert server.is_running()
    finally:
        squatter.close()


def test_fixed_port_taken_fails_with_the_reason(tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        broker = MosquittoProcess(port=squatter.getsockname()[1], data_dir=tmp_path)
        with pytest.raises(ServiceStartError, match=r"(?i)address already in use"):
            broker.start()


def test_service_ports_stay_out_of_the_ephemeral_range() -> None:
    """A restarted service must find its port again: outgoing connections never take it."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = {free_port() for _ in range(20)}
    assert all(p < low for p in ports) and len(ports) > 1
