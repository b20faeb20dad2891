"""Alert engine: rules, a pure lifecycle core, persistence in the registry, notifications.

Pure (no I/O, time passed in): ``durations``, ``yamlpos``, ``rules`` (models, YAML loading),
``model`` (value types), ``lifecycle`` (one subject and rule), ``noise`` (grouping,
inhibition, silences), ``engine`` (one evaluation step), ``actions`` (operator actions),
``observe`` (registry facts and detections -> observations), ``texts`` (catalog).
Boundaries: ``tables``/``codec``/``store`` (SQL registry) and ``notify`` (webhooks, MQTT
messages).
"""
