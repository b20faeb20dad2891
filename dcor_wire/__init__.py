"""The wire contract shared by edge agents and the hub: topics, payloads, encoding.

Nothing else is shared between the two sides; this package imports no I/O libraries.
"""

WIRE_VERSION = 1
