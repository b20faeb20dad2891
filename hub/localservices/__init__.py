"""Real Mosquitto and influxd processes on free 127.0.0.1 ports, for tests and the demo.

Each service gets its own temporary data folder and generated config, so nothing here touches
(or depends on) a broker or database the machine may already run on the default ports.
Readiness is polled, never slept for. ``stop()`` keeps the data folder so ``restart()`` comes
back on the same port with the same data; ``close()`` (or leaving the ``with`` block) stops the
process and removes a data folder it created.
"""

from hub.localservices.influxd import InfluxProcess
from hub.localservices.mosquitto import MosquittoProcess, TlsListener, mqtt_connack
from hub.localservices.postgres import PostgresProcess
from hub.localservices.process import (
    APT_HINT,
    LocalServiceError,
    ServiceNotInstalledError,
    ServiceProcess,
    ServiceStartError,
    find_binary,
    free_port,
    wait_until,
)

__all__ = [
    "APT_HINT",
    "InfluxProcess",
    "LocalServiceError",
    "MosquittoProcess",
    "PostgresProcess",
    "ServiceNotInstalledError",
    "ServiceProcess",
    "ServiceStartError",
    "TlsListener",
    "find_binary",
    "free_port",
    "mqtt_connack",
    "wait_until",
]
