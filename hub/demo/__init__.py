"""``dcor-hub demo``: broker, InfluxDB, hub, a few real agents and a simulated fleet on this
machine.

Everything runs on free 127.0.0.1 ports (never the default ones: the machine may run its own
Mosquitto or InfluxDB) under one data folder::

    <data>/mosquitto/      broker config, persistence and mosquitto.log
    <data>/influxd/        InfluxDB config, data and influxd.log
    <data>/hub/            hub.yaml (the generated settings), registry.sqlite, spool
    <data>/devices/<id>/   each device's enrollment bundle (agent.yaml) and its outbox
    <data>/sim/            the simulated boxes' outboxes (one ``dcor-sim`` process)
    <data>/logs/           ingest.log, web.log, agent-<id>.log, sim.log

Devices are enrolled through ``provisioning.enroll`` (the code behind ``dcor-provision
enroll``). Processes start in order and stop in reverse on Ctrl-C or SIGTERM; a temporary data
folder is removed afterwards, one given with ``--data-dir`` is kept.

``--sim-devices N`` (or ``DCOR_DEMO_SIM_DEVICES``; 300 by default, 0 for none) adds that many
simulated boxes over Depok's 63 kelurahan (``simfleet``).

Modules: ``layout`` (the Depok places, pure data), ``procs`` (child processes, ports, HTTP
polling, the progress line), ``simfleet`` (the simulated boxes: enrollment and ``dcor-sim``),
``run`` (the stages and ``run_demo``).
"""

from hub.demo.run import run_demo

__all__ = ["run_demo"]
