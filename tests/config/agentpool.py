"""Many real agents in one process: ``python -m tests.config.agentpool SPEC.json``.

Each is the real ``edge_agent.app.Agent`` (outbox, uplink, health loop, configuration
manager); only the process is shared, so fifty boxes fit on two cores. The spec is a JSON
list of agent configurations. SIGTERM stops them all.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from pathlib import Path

from edge_agent.app import Agent
from edge_agent.config import validate_config


def main(spec_path: str) -> int:
    logging.basicConfig(level=logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    configs = json.loads(Path(spec_path).read_text())
    agents = [Agent(validate_config(c)) for c in configs]
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    for a in agents:
        a.start()
    print(f"started {len(agents)} agents", flush=True)
    stop.wait()
    for a in agents:
        a.stop_event.set()
        a.remote.stop()
    for a in reversed(agents):
        a.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
