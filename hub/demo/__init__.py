"""``dcor-hub demo``: broker, InfluxDB, hub and a fleet of agents on this machine.

Everything runs on free 127.0.0.1 ports (never the default ones: the machine may run its own
Mosquitto or InfluxDB) under one data folder::

    <data>/mosquitto/      broker config, persistence and mosquitto.log
    <data>/influxd/        InfluxDB config, data and influxd.log
    <data>/hub/            hub.yaml (the generated settings), registry.sqlite, spool
    <data>/devices/<id>/   each device's enrollment bundle (agent.yaml) and its outbox
    <data>/logs/           ingest.log, web.log, agent-<id>.log

Devices are enrolled through ``provisioning.enroll`` (the code behind ``dcor-provision
enroll``). Processes start in order and stop in reverse on Ctrl-C or SIGTERM; a temporary data
folder is removed afterwards, one given with ``--data-dir`` is kept.

Modules: ``layout`` (the Depok places, pure data), ``procs`` (child processes, ports, HTTP
polling, the progress line), ``run`` (the stages and ``run_demo``).
"""

from hub.demo.run import run_demo

__all__ = ["run_demo"]
