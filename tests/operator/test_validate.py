"""Bad input: every problem names the field and the fix, and an invalid StreamJob gets no pods.

Aspects covered: parallelism above maxParallelism (the CEL rule's twin) and above the max
parallelism adopted from the job's first run; a max parallelism that contradicts the adopted one;
malformed checkpoint URLs; a missing credentials Secret or missing keys; a name too long for the
JobManager Service; an unreadable duration; the status condition and Warning Event they produce.
"""

from __future__ import annotations

import pytest

from streamjob.operator.core import model, observation, validate
from tests.operator.simulation import World, spec_dict


def problems_of(spec: dict, **kwargs: object) -> list[validate.Problem]:
    parsed = validate.parse(spec)
    assert isinstance(parsed, model.StreamJobSpec), parsed
    return validate.problems(
        parsed,
        name=str(kwargs.get("name", "wordcount")),
        recorded=kwargs.get("recorded", observation.Recorded()),  # type: ignore[arg-type]
        secret=kwargs.get("secret"),  # type: ignore[arg-type]
    )


def test_a_valid_spec_has_no_problems() -> None:
    assert problems_of(spec_dict(maxParallelism=64)) == []


def test_parallelism_above_max_parallelism_names_the_field_and_the_fix() -> None:
    (problem,) = problems_of(spec_dict(parallelism=9, maxParallelism=8))
    assert problem.field == "spec.job.parallelism"
    assert "exceeds maxParallelism 8" in problem.message
    assert problem.fix == "set job.parallelism to at most 8"


def test_the_max_parallelism_of_the_first_run_is_binding() -> None:
    adopted = observation.Recorded(max_parallelism=128)
    (over,) = problems_of(spec_dict(parallelism=129), recorded=adopted)
    assert over.field == "spec.job.parallelism" and "at most 128" in over.fix
    (changed,) = problems_of(spec_dict(maxParallelism=256), recorded=adopted)
    assert changed.field == "spec.job.maxParallelism"
    assert "128" in changed.fix


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://B/x", "no valid bucket name"),
        ("s3:///x", "no valid bucket name"),
        ("file://relative/dir", "not an absolute file URL"),
        ("hdfs://nn/x", "not a checkpoint URL"),
    ],
)
def test_malformed_checkpoint_urls(url: str, message: str) -> None:
    spec = spec_dict()
    spec["checkpoints"]["dir"] = url
    (problem,) = problems_of(spec)
    assert problem.field == "spec.checkpoints.dir"
    assert message in problem.message
    assert "s3://BUCKET/PREFIX" in problem.fix


def test_missing_credentials_secret_or_keys() -> None:
    spec = spec_dict()
    spec["checkpoints"]["s3"] = {"credentialsSecret": "s3-creds"}
    missing = observation.SecretView(name="s3-creds", exists=False)
    (problem,) = problems_of(spec, secret=missing)
    assert problem.field == "spec.checkpoints.s3.credentialsSecret"
    assert "does not exist" in problem.message
    assert "kubectl create secret generic s3-creds" in problem.fix
    partial = observation.SecretView(
        name="s3-creds", exists=True, keys=frozenset({"AWS_ACCESS_KEY_ID"})
    )
    (problem,) = problems_of(spec, secret=partial)
    assert "AWS_SECRET_ACCESS_KEY" in problem.message


def test_a_name_too_long_for_the_service() -> None:
    (problem,) = problems_of(spec_dict(), name="x" * 53)
    assert problem.field == "metadata.name"


def test_an_unreadable_duration_is_a_problem_not_a_crash() -> None:
    spec = spec_dict()
    spec["checkpoints"]["interval"] = "soon"
    problem = validate.parse(spec)
    assert isinstance(problem, validate.Problem)
    assert problem.field == "spec.checkpoints.interval"


def test_an_invalid_streamjob_gets_a_condition_an_event_and_no_pods() -> None:
    world = World(spec=spec_dict())
    world.spec["checkpoints"]["s3"] = {"credentialsSecret": "s3-creds"}
    decision = world.cycle()
    assert world.pods == {} and decision.plan.actions == ()
    valid = next(c for c in world.status["conditions"] if c["type"] == "Valid")
    assert valid["status"] == "False" and valid["reason"] == "InvalidSpec"
    assert "spec.checkpoints.s3.credentialsSecret" in valid["message"]
    assert world.status["lifecycleState"] == "CREATED"
    (event,) = [e for e in world.events if e.reason == "InvalidSpec"]
    assert event.type == "Warning" and "kubectl create secret" in event.message
    world.cycle()
    assert world.event_reasons().count("InvalidSpec") == 1  # not repeated every cycle
    world.secret_keys = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"})
    world.settle()
    assert "wordcount-jobmanager" in world.pods
    assert "SpecValid" in world.event_reasons()
