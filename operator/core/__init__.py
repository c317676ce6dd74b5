"""The operator's pure core: the StreamJob model, validation, naming, rendering, planning, status.

Nothing here does I/O or imports kopf, kubernetes or an HTTP client (checked by import-linter):
:mod:`.model` parses the spec, :mod:`.observation` holds what the shell observed, :mod:`.validate`
finds bad input, :mod:`.names` and :mod:`.render` build deterministic names and manifests,
:mod:`.plan` turns (spec, status, observation) into actions, :mod:`.status` into one status patch
and the Events of its transitions.
"""
