"""The operator's pure core: the StreamJob model, validation, naming, rendering, planning, status.

Nothing here does I/O or imports kopf, kubernetes or an HTTP client (checked by import-linter):
:mod:`.model` parses the spec, :mod:`.observation` holds what the shell observed, :mod:`.validate`
finds bad input, :mod:`.names` and :mod:`.render` build deterministic names and manifests,
:mod:`.planner` turns (spec, status, observation) into a :mod:`.plan` of :mod:`.actions`
through one module per flow (:mod:`.changes`, :mod:`.maintenance`, :mod:`.scaling`,
:mod:`.savepoints`, :mod:`.upgrades`, :mod:`.teardown`, with :mod:`.lineage`), and
:mod:`.status` turns the plan into one status patch and the Events of its transitions;
:mod:`.cycle` runs them in order.
"""
