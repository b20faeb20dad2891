"""The agent's configuration manager: one named thread (``dcor.config``) that takes desired
documents from the uplink, applies them, watches the trial and reports.

For each document: check (``document.check_message``) -> validate against AgentConfig with
stand-in model paths -> fetch the models -> validate with the real paths -> write
``active.json`` (the commit point) -> restart only the changed stages -> watch the health gate
-> keep (``good.json``) and report ``applied``, or put the last good back and report
``rolled_back``. A refused document changes nothing and is reported ``rejected``.

At boot the configuration named by ``active.json`` is the one run. If it was still on trial
(the box restarted during it) the trial runs again once; a second restart during the same
trial gives the last good back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from dcor_wire.configdoc import ConfigDoc, parse_doc
from dcor_wire.signing import SignatureError, verify
from edge_agent.config import AgentConfig
from edge_agent.remoteconf.document import Received, Rejection, check_message, effective_config
from edge_agent.remoteconf.fetch import ModelFetchError, fetch_model, have_model
from edge_agent.remoteconf.gate import HealthGate, Probe
from edge_agent.remoteconf.store import ConfigStore

log = logging.getLogger("dcor.agent.config")

TICK_S = 0.25
FETCH_ATTEMPTS = 3
MAX_TRIAL_BOOTS = 1


class StageHost(Protocol):
    """What the manager needs from the agent (``edge_agent.app.Agent``)."""

    def reconfigure(self, cfg: AgentConfig) -> list[str]: ...

    def probe(self) -> Probe: ...

    def report_config(self, fields: dict[str, Any]) -> None: ...


class ConfigManager:
    def __init__(self, local: AgentConfig, *, state_dir: Path,
                 public_key: Ed25519PublicKey | None,
                 monotonic: Callable[[], float] = time.monotonic,
                 fetch: Callable[..., Path] = fetch_model) -> None:
        self.local = local
        self.store = ConfigStore(state_dir)
        self.public_key = public_key
        self._mono = monotonic
        self._fetch = fetch
        self.host: StageHost | None = None
        self.version = 0
        self.digest = ""
        self._doc: ConfigDoc | None = None  # the document in force (None: agent.yaml)
        self._envelope: dict[str, Any] | None = None
        self._gate: HealthGate | None = None
        self._restarted: list[str] = []  # stages the document on trial restarted
        self._trial_after_boot = False
        self._pending_reports: list[dict[str, Any]] = []
        self._inbox: bytes | None = None
        self._cv = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- boot -----------------------------------------------------------------------------

    def boot(self) -> AgentConfig:
        """The configuration to build the stages with: ``active.json`` or agent.yaml."""
        active = self.store.active()
        if active is None:
            return self.local
        cfg = self._load(active.envelope)
        if cfg is None:
            log.error("the stored configuration cannot be used any more: last good instead")
            return self._boot_good("the stored configuration no longer verifies or validates")
        if not active.confirmed:
            if active.boots >= MAX_TRIAL_BOOTS:
                return self._boot_good("the box restarted twice during the trial")
            self.store.count_boot(active)
            self._trial_after_boot = True
        return cfg

    def _boot_good(self, why: str) -> AgentConfig:
        tried_version, tried_digest = self.version, self.digest
        self._mark_seen(tried_version, tried_digest)
        good = self.store.rollback()
        cfg = self._load(good) if good is not None else None
        if cfg is None:
            self._set_current(None, None)
            cfg = self.local
        self._pending_reports.append(self._report_fields(
            "rolled_back", reason="boot", error=why, desired=(tried_version, tried_digest)))
        return cfg

    def _load(self, envelope: dict[str, Any]) -> AgentConfig | None:
        """Verify and validate a stored envelope again (the key or agent.yaml may have
        changed since), with its models present; None when it no longer holds."""
        if self.public_key is None:
            return None
        try:
            doc = parse_doc(verify(envelope, self.public_key))
            paths = {}
            for name, spec in doc.models.items():
                path = have_model(spec, self._model_dir())
                if path is None:
                    return None
                paths[name] = path
            cfg = effective_config(self.local, doc, paths)
        except (SignatureError, ValueError, Rejection, OSError) as exc:
            log.warning("stored configuration unusable: %s", exc)
            return None
        self._set_current(doc, envelope)
        return cfg

    def _set_current(self, doc: ConfigDoc | None, envelope: dict[str, Any] | None) -> None:
        self._doc, self._envelope = doc, envelope
        self.version = doc.version if doc else 0
        self.digest = doc.digest if doc else ""

    def _model_dir(self) -> Path:
        return self.local.data_dir / "models"

    # --- running --------------------------------------------------------------------------

    def start(self, host: StageHost) -> None:
        self.host = host
        for fields in self._pending_reports:
            host.report_config(fields)
        self._pending_reports.clear()
        if self._trial_after_boot and self._doc is not None:
            self._gate = self._new_gate(self._doc)
        self._thread = threading.Thread(target=self._run, name="dcor.config", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(10)

    def offer(self, data: bytes) -> None:
        """From the MQTT thread: the newest desired document waits for the config thread."""
        with self._cv:
            self._inbox = data
            self._cv.notify_all()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self._gate is not None:
                    self._watch()
                    self._stop.wait(TICK_S)
                    continue
                with self._cv:
                    if self._inbox is None:
                        self._cv.wait(TICK_S)
                    data, self._inbox = self._inbox, None
                if data is not None:
                    self.handle(data)
            except Exception:  # one bad document must not end remote configuration
                log.exception("configuration handling failed")
                self._stop.wait(1.0)

    # --- one document ---------------------------------------------------------------------

    def handle(self, data: bytes) -> None:
        try:
            got = check_message(data, device_id=self.local.device_id,
                                public_key=self.public_key,
                                current=(self.version, self.digest), seen=self.store.seen())
        except Rejection as rej:
            self._reject(rej)
            return
        if got is None:
            return  # the retained document again (reconnect): already handled
        doc = got.doc
        if doc.digest == self.digest and self._gate is None:
            # Same content under a newer version (e.g. a revert to what already runs).
            self.store.adopt(got.envelope)
            self._set_current(doc, got.envelope)
            self._report("applied", desired=(doc.version, doc.digest), rollout=doc.rollout)
            return
        try:
            effective_config(self.local, doc)  # refuse before downloading anything
            paths = self._fetch_models(doc)
            cfg = effective_config(self.local, doc, paths)
        except Rejection as rej:
            self._reject(rej)
            return
        self._apply(got, cfg)

    def _fetch_models(self, doc: ConfigDoc) -> dict[str, Path]:
        ca = self.local.mqtt.tls.ca_file if self.local.mqtt.tls else None
        paths: dict[str, Path] = {}
        for name, spec in doc.models.items():
            last = ""
            for attempt in range(FETCH_ATTEMPTS):
                try:
                    paths[name] = self._fetch(spec, self._model_dir(), ca_file=ca)
                    break
                except ModelFetchError as exc:
                    last = str(exc)
                    if self._stop.wait(min(8.0, 1.0 * 2 ** attempt)):
                        break
            else:
                raise Rejection("model_fetch", f"model {name}: {last}"[:900], doc.version,
                                doc.digest, doc.rollout, signed=True)
            if name not in paths:
                raise Rejection("model_fetch", "stopping", doc.version, doc.digest,
                                doc.rollout, signed=True)
        return paths

    def _apply(self, got: Received, cfg: AgentConfig) -> None:
        assert self.host is not None
        doc = got.doc
        self.store.begin_trial(got.envelope)  # from here a restart runs the new one
        self._set_current(doc, got.envelope)
        try:
            self._restarted = self.host.reconfigure(cfg)
        except Exception as exc:
            log.exception("applying version %d failed", doc.version)
            self._give_back(f"apply failed: {type(exc).__name__}: {exc}"[:900],
                            reason="apply_failed")
            return
        log.info("configuration %d applied (restarted %s); on trial for up to %gs",
                 doc.version, ", ".join(self._restarted) or "nothing", doc.apply.grace_s)
        self._gate = self._new_gate(doc)

    def _new_gate(self, doc: ConfigDoc) -> HealthGate:
        assert self.host is not None
        return HealthGate(self._mono(), doc.apply.grace_s, doc.apply.settle_s,
                          self.host.probe())

    def _watch(self) -> None:
        assert self.host is not None and self._gate is not None
        verdict = self._gate.observe(self.host.probe(), self._mono())
        if verdict.state == "healthy":
            self._gate = None
            assert self._envelope is not None and self._doc is not None
            self.store.confirm(self._envelope)
            log.info("configuration %d kept", self.version)
            self._report("applied", desired=(self.version, self.digest),
                         rollout=self._doc.rollout, restarted=self._restarted)
        elif verdict.state == "failed":
            self._gate = None
            log.warning("configuration %d gives back: %s", self.version, verdict.reason)
            self._give_back(verdict.reason)

    def _give_back(self, why: str, reason: str = "health") -> None:
        """Roll back to the last known good (``good.json``, else agent.yaml)."""
        assert self.host is not None
        tried = (self.version, self.digest)
        rollout = self._doc.rollout if self._doc else ""
        self._mark_seen(*tried)  # its retained copy must not be tried again
        good = self.store.rollback()
        cfg = self._load(good) if good is not None else None
        if cfg is None:
            self._set_current(None, None)
            cfg = self.local
        try:
            self.host.reconfigure(cfg)
        except Exception:
            log.exception("putting the last good configuration back failed")
        self._report("rolled_back", reason=reason, error=why, desired=tried, rollout=rollout)

    def _reject(self, rej: Rejection) -> None:
        log.warning("configuration refused: %s", rej)
        # Only what the hub signed moves the mark: a forged "version 10^9" must not make the
        # hub's next real document look old.
        if rej.signed:
            self._mark_seen(rej.version, rej.digest)
        self._report("rejected", reason=rej.reason, error=rej.detail,
                     desired=(rej.version, rej.digest), rollout=rej.rollout)

    def _mark_seen(self, version: int, digest: str) -> None:
        """Remember a document that is not in force (refused, given back), so its retained
        copy, delivered again on every reconnect, is neither applied nor reported again.
        Applied documents need no mark: ``active.json`` names them."""
        if version > self.store.seen()[0]:
            self.store.note_seen(version, digest)

    # --- reports --------------------------------------------------------------------------

    def _report_fields(self, status: str, *, reason: str = "", error: str = "",
                       desired: tuple[int, str] = (0, ""), rollout: str = "",
                       restarted: list[str] | None = None) -> dict[str, Any]:
        return {"ts": int(time.time() * 1000), "status": status, "version": self.version,
                "digest": self.digest, "desired_version": desired[0],
                "desired_digest": desired[1], "reason": reason[:128], "error": error[:1024],
                "rollout": rollout[:128], "restarted": [s[:128] for s in restarted or []]}

    def _report(self, status: str, **kw: Any) -> None:
        fields = self._report_fields(status, **kw)
        if self.host is None:
            self._pending_reports.append(fields)
        else:
            self.host.report_config(fields)
