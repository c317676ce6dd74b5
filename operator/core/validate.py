"""Semantic validation of a StreamJob: what the CRD schema cannot say, each with its fix.

The schema already rejects wrong types, enums and formats at ``kubectl apply``; this module
repeats the checks a schema-less path could miss and adds the ones that need context: the
parallelism against the max parallelism adopted from the job's first run, the credentials Secret
that must exist, a checkpoint URL that parses but cannot work, a name too long for its children.
A :class:`Problem` names the field, says what is wrong and what to do; the shell turns problems
into a ``Valid=False`` condition and a Warning Event, and creates no pods.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from streamjob.operator.core import model, observation

#: ``NAME-jobmanager`` must be a DNS-1035 label (63 characters) for the Service
MAX_NAME_LENGTH = 52
SECRET_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_ENTRYPOINT = re.compile(r"^\S+:[A-Za-z_][A-Za-z0-9_]*$|^\S+\.py$")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Problem:
    field: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}; {self.fix}"


def parse(spec: Mapping[str, Any]) -> model.StreamJobSpec | Problem:
    try:
        return model.parse_spec(spec)
    except model.SpecError as exc:
        return Problem(
            field=f"spec.{exc.field}", message=exc.detail, fix="correct it and apply again"
        )


def storage_url_problem(url: str, *, field: str) -> Problem | None:
    """``s3://bucket/prefix`` (a valid bucket name) or ``file:///absolute/path``."""
    fix = "use s3://BUCKET/PREFIX or file:///ABSOLUTE/PATH"
    if url.startswith("s3://"):
        bucket = url[5:].split("/", 1)[0]
        if not _BUCKET.match(bucket):
            return Problem(
                field=field,
                message=f"{url!r} has no valid bucket name ({bucket!r})",
                fix=f"{fix} (3-63 lowercase letters, digits, dots, hyphens)",
            )
        return None
    if url.startswith("file://"):
        if not url.startswith("file:///"):
            return Problem(field=field, message=f"{url!r} is not an absolute file URL", fix=fix)
        return None
    return Problem(field=field, message=f"{url!r} is not a checkpoint URL", fix=fix)


def problems(
    spec: model.StreamJobSpec,
    *,
    name: str,
    recorded: observation.Recorded,
    secret: observation.SecretView | None,
) -> list[Problem]:
    """Everything wrong with ``spec`` in its context; empty when it can be reconciled."""
    found: list[Problem] = []
    if len(name) > MAX_NAME_LENGTH or not _NAME.match(name):
        found.append(
            Problem(
                field="metadata.name",
                message=f"{name!r} cannot name the JobManager Service ({name}-jobmanager)",
                fix=f"use a DNS-1035 name of at most {MAX_NAME_LENGTH} characters",
            )
        )
    job = spec.job
    if not _ENTRYPOINT.match(job.entrypoint):
        found.append(
            Problem(
                field="spec.job.entrypoint",
                message=f"{job.entrypoint!r} is not module:function, path.py:function or path.py",
                fix="name the function that builds the job, e.g. jobs.wordcount:build",
            )
        )
    if job.max_parallelism is not None and job.parallelism > job.max_parallelism:
        found.append(
            Problem(
                field="spec.job.parallelism",
                message=f"parallelism {job.parallelism} exceeds maxParallelism "
                f"{job.max_parallelism}",
                fix=f"set job.parallelism to at most {job.max_parallelism}",
            )
        )
    adopted = recorded.max_parallelism
    if adopted is not None and job.max_parallelism is not None and job.max_parallelism != adopted:
        found.append(
            Problem(
                field="spec.job.maxParallelism",
                message=f"maxParallelism {job.max_parallelism} differs from {adopted}, which "
                "the job's checkpoints were written with (their key groups)",
                fix=f"set job.maxParallelism to {adopted} or remove it",
            )
        )
    elif adopted is not None and job.max_parallelism is None and job.parallelism > adopted:
        found.append(
            Problem(
                field="spec.job.parallelism",
                message=f"parallelism {job.parallelism} exceeds the job's max parallelism "
                f"{adopted} (status.jobStatus.maxParallelism, fixed by its checkpoints)",
                fix=f"set job.parallelism to at most {adopted}",
            )
        )
    for field, url in (
        ("spec.checkpoints.dir", spec.checkpoints.dir),
        ("spec.checkpoints.savepointDir", spec.checkpoints.savepoint_dir),
    ):
        problem = None if url is None else storage_url_problem(url, field=field)
        if problem is not None:
            found.append(problem)
    found.extend(_secret_problems(spec, secret))
    return found


def _secret_problems(
    spec: model.StreamJobSpec, secret: observation.SecretView | None
) -> list[Problem]:
    s3 = spec.checkpoints.s3
    if s3 is None or s3.credentials_secret is None or secret is None:
        return []
    field = "spec.checkpoints.s3.credentialsSecret"
    create = (
        f"kubectl create secret generic {secret.name} "
        "--from-literal=AWS_ACCESS_KEY_ID=... --from-literal=AWS_SECRET_ACCESS_KEY=..."
    )
    if not secret.exists:
        return [
            Problem(
                field=field,
                message=f"Secret {secret.name!r} does not exist in this namespace",
                fix=f"create it ({create}) or fix the name",
            )
        ]
    missing = [k for k in SECRET_KEYS if k not in secret.keys]
    if missing:
        return [
            Problem(
                field=field,
                message=f"Secret {secret.name!r} has no key {', '.join(missing)}",
                fix=f"add the keys {' and '.join(SECRET_KEYS)} to it",
            )
        ]
    return []
