"""``config/reported`` into the registry (called by the ingest inside its batch transaction).

One row per device holds its newest report. A report older than the stored one (the box's
outbox sends again what the hub did not confirm) never overwrites a newer one: newest by the
box's own ``ts``, then ``seq``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from dcor_wire import payloads
from hub.rollout.tables import ConfigReportRow


def newer(a: payloads.ConfigReported, b: payloads.ConfigReported) -> bool:
    return (a.ts, a.seq) > (b.ts, b.seq)


def record_reports(s: Session, reports: Mapping[str, payloads.ConfigReported]) -> int:
    """Store each device's report unless the registry holds a newer one; returns how many
    rows changed."""
    if not reports:
        return 0
    now = datetime.now(UTC)
    rows = {r.device_id: r for r in s.scalars(
        select(ConfigReportRow).where(ConfigReportRow.device_id.in_(list(reports))))}
    changed = 0
    for dev, rep in reports.items():
        row = rows.get(dev)
        if row is not None and (row.device_ts_ms, row.seq) >= (rep.ts, rep.seq):
            continue
        if row is None:
            row = ConfigReportRow(device_id=dev)
            s.add(row)
        row.status, row.version, row.digest = rep.status, rep.version, rep.digest
        row.desired_version, row.desired_digest = rep.desired_version, rep.desired_digest
        row.reason, row.error, row.rollout_id = rep.reason, rep.error, rep.rollout
        row.device_ts_ms, row.seq, row.received_at = rep.ts, rep.seq, now
        changed += 1
    return changed
