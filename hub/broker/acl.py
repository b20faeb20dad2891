"""Broker roles and ACLs, generated from the wire contract's topic builders (pure).

Mosquitto's dynamic-security plugin checks four kinds of access; our defaults deny all but
unsubscribing, so a client can do exactly what its role lists and nothing else:

- a device publishes only its own telemetry leaves and subscribes (literally, no wildcards of
  its own) only to its own ``config/desired``, ``cmd/#`` and ``ack``;
- the hub reads and writes under ``dcor/v1/``;
- the hub's admin client talks only to ``$CONTROL/dynamic-security/``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from dcor_wire import topics

DEVICE_ROLE_PREFIX: Final = "dcor-device-"
HUB_ROLE: Final = "dcor-hub"
ADMIN_ROLE: Final = "dcor-broker-admin"
CONTROL_TOPIC: Final = "$CONTROL/dynamic-security/v1"
CONTROL_FILTER: Final = "$CONTROL/dynamic-security/#"

# Deny by default; unsubscribing is harmless.
DEFAULT_ACL_ACCESS: Final = {
    "publishClientSend": False,
    "publishClientReceive": False,
    "subscribe": False,
    "unsubscribe": True,
}


@dataclass(frozen=True, slots=True)
class Acl:
    acltype: str  # publishClientSend | publishClientReceive | subscribeLiteral | ...
    topic: str
    allow: bool = True
    priority: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"acltype": self.acltype, "topic": self.topic, "allow": self.allow,
                "priority": self.priority}


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    acls: tuple[Acl, ...]

    def to_json(self) -> dict[str, Any]:
        return {"rolename": self.name, "acls": [a.to_json() for a in self.acls]}


def device_role_name(device_id: str) -> str:
    return DEVICE_ROLE_PREFIX + topics.check_device_id(device_id)


def device_role(device_id: str) -> Role:
    """What one box may do, from ``agent_publish_topics`` and ``agent_subscriptions``."""
    subs = topics.agent_subscriptions(device_id)
    acls = [Acl("publishClientSend", t) for t in topics.agent_publish_topics(device_id)]
    acls += [Acl("subscribeLiteral", f) for f in subs]
    acls += [Acl("publishClientReceive", f) for f in subs]
    return Role(device_role_name(device_id), tuple(acls))


def hub_role() -> Role:
    """The hub's ingest and web processes: everything under the wire contract's root."""
    everything = f"{topics.ROOT}/#"
    return Role(HUB_ROLE, (
        Acl("subscribePattern", everything),
        # Several ingest workers share one subscription; the broker checks the whole filter.
        Acl("subscribePattern", f"$share/+/{everything}"),
        Acl("publishClientReceive", everything),
        Acl("publishClientSend", everything),
    ))


def admin_role() -> Role:
    """The hub's broker administration: the dynamic-security control topics only."""
    return Role(ADMIN_ROLE, (
        Acl("publishClientSend", CONTROL_FILTER),
        Acl("publishClientReceive", CONTROL_FILTER),
        Acl("subscribePattern", CONTROL_FILTER),
    ))


def create_device_commands(device_id: str, password: str) -> list[dict[str, Any]]:
    """Dynamic-security commands that give a new box its client and role."""
    role = device_role(device_id)
    return [
        {"command": "createRole", **role.to_json()},
        {"command": "createClient", "username": device_id, "password": password,
         "textname": f"dcor device {device_id}", "roles": [{"rolename": role.name}]},
    ]


def delete_device_commands(device_id: str) -> list[dict[str, Any]]:
    """Remove the client (the broker disconnects it at once) and its role."""
    return [
        {"command": "deleteClient", "username": topics.check_device_id(device_id)},
        {"command": "deleteRole", "rolename": device_role_name(device_id)},
    ]
