"""The CRD (crds/streamjob.yaml): its names, subresources, printer columns, schema and rules.

Aspects covered: group/version/kind/short name; the status and scale subresources with the
label selector path; printer columns; the spec schema's defaults, enums and minimums; the two CEL
rules (the texts the tests' Python stand-ins stand for); that the parser's defaults match the
schema's; that kopf's bookkeeping has no place in status (it goes to annotations).
"""

from __future__ import annotations

from streamjob.operator.core import model
from tests.operator import schema
from tests.operator.simulation import spec_dict


def test_names_and_subresources() -> None:
    crd = schema.load_crd()
    assert crd["metadata"]["name"] == "streamjobs.streamjob.io"
    assert crd["spec"]["names"]["kind"] == "StreamJob"
    assert crd["spec"]["names"]["shortNames"] == ["sj"]
    (version,) = crd["spec"]["versions"]
    assert version["name"] == "v1alpha1" and version["storage"]
    assert version["subresources"] == {
        "status": {},
        "scale": {
            "specReplicasPath": ".spec.job.parallelism",
            "statusReplicasPath": ".status.taskManagers.replicas",
            "labelSelectorPath": ".status.taskManagers.labelSelector",
        },
    }
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Job State"] == ".status.jobStatus.state"
    assert columns["Parallelism"] == ".spec.job.parallelism"
    assert columns["Last Checkpoint"] == ".status.lastCheckpoint.id"
    assert columns["Age"] == ".metadata.creationTimestamp"


def test_cel_rules_are_the_ones_the_stand_ins_check() -> None:
    job = schema.openapi_schema()["properties"]["spec"]["properties"]["job"]
    rules = [r["rule"] for r in job["x-kubernetes-validations"]]
    assert rules == [schema.CEL_PARALLELISM, schema.CEL_MAX_IMMUTABLE]
    ok = {"spec": {"job": {"parallelism": 4, "maxParallelism": 8}}}
    assert schema.cel_errors(ok, None) == []
    assert schema.cel_errors({"spec": {"job": {"parallelism": 9, "maxParallelism": 8}}}, None)
    changed = {"spec": {"job": {"parallelism": 4, "maxParallelism": 16}}}
    assert schema.cel_errors(changed, ok) != []
    assert schema.cel_errors({"spec": {"job": {"parallelism": 4}}}, ok) != []


def test_defaults_match_the_parser() -> None:
    stored, errors = schema.admit({"spec": spec_dict()})
    assert errors == []
    job = stored["spec"]["job"]
    assert job["state"] == "running" and job["upgradeMode"] == "last-state"
    assert stored["spec"]["stateBackend"] == "hashmap"
    assert stored["spec"]["checkpoints"]["retained"] == 1
    assert model.parse_spec(stored["spec"]) == model.parse_spec(spec_dict())


def test_schema_rejects_bad_input_with_the_field_named() -> None:
    spec = spec_dict(parallelism=0, upgradeMode="sometimes")
    spec["checkpoints"]["dir"] = "ftp://x"
    _, errors = schema.admit({"spec": spec})
    text = "\n".join(errors)
    assert ".spec.job.parallelism" in text
    assert ".spec.job.upgradeMode" in text
    assert ".spec.checkpoints.dir" in text


def test_unknown_spec_fields_are_pruned_but_pod_templates_are_kept() -> None:
    spec = spec_dict(typo=1)
    spec["taskManager"] = {"podTemplate": {"spec": {"nodeSelector": {"a": "b"}}}}
    stored, errors = schema.admit({"spec": spec})
    assert errors == []
    assert "typo" not in stored["spec"]["job"]
    assert stored["spec"]["taskManager"]["podTemplate"] == {"spec": {"nodeSelector": {"a": "b"}}}


def test_status_has_no_room_for_kopf_bookkeeping() -> None:
    status = schema.status_schema()
    assert "kopf" not in status["properties"]
    assert not status.get("x-kubernetes-preserve-unknown-fields")
