"""People and credentials on the hub: users and roles, password hashing, API tokens, web
sessions, login throttling, the audit log, and each device's install record."""
