"""Signed documents: version numbers per device, the envelope, the ``config_desired`` rows.

A device's next version is one above everything known of it: the newest document signed for
it and what it last reported (in force, or refused). A box whose hub lost its registry then
still accepts the next push instead of calling it old.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dcor_wire.canonical import canonical_json
from dcor_wire.configdoc import ConfigDoc, parse_doc
from dcor_wire.signing import sign
from hub.rollout.tables import ConfigReportRow, DesiredConfigRow


def next_versions(s: Session, device_ids: Iterable[str]) -> dict[str, int]:
    ids = list(device_ids)
    out = dict.fromkeys(ids, 1)
    for chunk in _chunks(ids, 500):
        for dev, top in s.execute(select(DesiredConfigRow.device_id,
                                         func.max(DesiredConfigRow.version))
                                  .where(DesiredConfigRow.device_id.in_(chunk))
                                  .group_by(DesiredConfigRow.device_id)):
            out[dev] = max(out[dev], int(top) + 1)
        for rep in s.scalars(select(ConfigReportRow).where(ConfigReportRow.device_id.in_(chunk))):
            out[rep.device_id] = max(out[rep.device_id], rep.version + 1,
                                     rep.desired_version + 1)
    return out


def latest_desired(s: Session, device_ids: Iterable[str]) -> dict[str, DesiredConfigRow]:
    ids = list(device_ids)
    out: dict[str, DesiredConfigRow] = {}
    for chunk in _chunks(ids, 500):
        newest = (select(DesiredConfigRow.device_id, func.max(DesiredConfigRow.version)
                         .label("v")).where(DesiredConfigRow.device_id.in_(chunk))
                  .group_by(DesiredConfigRow.device_id).subquery())
        rows = s.scalars(select(DesiredConfigRow).join(
            newest, (DesiredConfigRow.device_id == newest.c.device_id)
            & (DesiredConfigRow.version == newest.c.v)))
        out.update({r.device_id: r for r in rows})
    return out


def build_envelope(key: Ed25519PrivateKey, *, device_id: str, version: int,
                   planned: Mapping[str, Any], apply: Mapping[str, float], rollout: str,
                   kind: str = "push", issued_ms: int | None = None) -> bytes:
    """The bytes published on ``config/desired``; checked against the schema the boxes use."""
    doc = {"v": 1, "device_id": device_id, "version": version,
           "issued_ms": issued_ms if issued_ms is not None else int(time.time() * 1000),
           "digest": planned["digest"], "config": planned["config"],
           "models": planned.get("models") or {}, "apply": dict(apply), "rollout": rollout,
           "kind": kind}
    parse_doc(doc)  # a hub bug must fail here, not on a thousand boxes
    return canonical_json(sign(doc, key))


def add_desired(s: Session, *, device_id: str, version: int, digest: str, envelope: bytes,
                kind: str, rollout_id: str, author: str) -> DesiredConfigRow:
    row = DesiredConfigRow(device_id=device_id, version=version, digest=digest,
                           envelope=envelope.decode("utf-8"), kind=kind,
                           rollout_id=rollout_id, author=author[:80],
                           created_at=datetime.now(UTC))
    s.add(row)
    return row


def planned_of(row: DesiredConfigRow) -> dict[str, Any]:
    """The content of a stored document, to send again (a revert) under a new version."""
    doc: ConfigDoc = parse_doc(json.loads(row.envelope)["doc"])
    models = {k: {"url": m.url, "sha256": m.sha256, "size": m.size}
              for k, m in doc.models.items()}
    return {"config": doc.config, "models": models, "digest": doc.digest}


def _chunks(items: list[str], n: int) -> Iterable[list[str]]:
    for i in range(0, len(items), n):
        yield items[i: i + n]
