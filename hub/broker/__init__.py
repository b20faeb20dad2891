"""The broker's security: roles and ACLs from the wire contract, the dynamic-security file
and the hub's admin client on ``$CONTROL/dynamic-security/v1``."""
