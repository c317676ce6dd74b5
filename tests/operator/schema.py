"""What an API server does with a StreamJob before storing it: defaults, pruning, validation.

A small structural-schema engine for ``crds/streamjob.yaml`` (types, enums, minimum/maximum,
minLength, pattern, required, items, additionalProperties, ``x-kubernetes-int-or-string``,
``x-kubernetes-preserve-unknown-fields``, date-time formats). The CRD's two CEL rules are checked
by Python stand-ins (:func:`cel_errors`); ``test_crd.py`` pins the rule texts they stand for.
Used by the pure status tests and by the kmock fixture, so whatever the operator writes is what
a real API server would keep.
"""

from __future__ import annotations

import copy
import datetime
import functools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = ROOT / "crds" / "streamjob.yaml"

CEL_PARALLELISM = "!has(self.maxParallelism) || self.parallelism <= self.maxParallelism"
CEL_MAX_IMMUTABLE = (
    "!has(oldSelf.maxParallelism) || "
    "(has(self.maxParallelism) && self.maxParallelism == oldSelf.maxParallelism)"
)


def load_crd() -> dict[str, Any]:
    return copy.deepcopy(_crd())


@functools.cache
def _crd() -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load(CRD_PATH.read_text())
    return crd


def openapi_schema() -> dict[str, Any]:
    schema: dict[str, Any] = _crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def status_schema() -> dict[str, Any]:
    found: dict[str, Any] = openapi_schema()["properties"]["status"]
    return found


# -- defaulting and pruning ----------------------------------------------------------------------
def apply_defaults(schema: Mapping[str, Any], value: Any) -> Any:
    if isinstance(value, dict) and schema.get("type") == "object":
        props = schema.get("properties") or {}
        for key, sub in props.items():
            if key not in value and "default" in sub:
                value[key] = copy.deepcopy(sub["default"])
            if key in value:
                value[key] = apply_defaults(sub, value[key])
        extra = schema.get("additionalProperties")
        if isinstance(extra, Mapping):
            for key in value:
                value[key] = apply_defaults(extra, value[key])
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [apply_defaults(schema["items"], item) for item in value]
    return value


def prune(schema: Mapping[str, Any], value: Any, *, root: bool = False) -> Any:
    """Drop the fields the schema does not know (as an API server does, silently)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return value
    if isinstance(value, dict) and schema.get("type") == "object":
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        kept: dict[str, Any] = {}
        for key, item in value.items():
            if root and key == "metadata":
                kept[key] = item
            elif props is not None and key in props:
                kept[key] = prune(props[key], item)
            elif isinstance(extra, Mapping):
                kept[key] = prune(extra, item)
            elif props is None and extra is None:
                kept[key] = item  # a bare `type: object` keeps everything
        return kept
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        return [prune(schema["items"], item) for item in value]
    return value


# -- validation ----------------------------------------------------------------------------------
_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def validate(schema: Mapping[str, Any], value: Any, path: str = "") -> list[str]:
    errors: list[str] = []
    where = path or "<root>"
    if schema.get("x-kubernetes-int-or-string"):
        if not isinstance(value, int | str) or isinstance(value, bool):
            errors.append(f"{where}: {value!r} is not an int or a string")
        return errors
    kind = schema.get("type")
    if kind is not None:
        ok = isinstance(value, _TYPES[kind]) and not (
            kind in ("integer", "number") and isinstance(value, bool)
        )
        if not ok:
            return [f"{where}: {value!r} is not of type {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if "minimum" in schema and value < schema["minimum"]:
        errors.append(f"{where}: {value} is below the minimum {schema['minimum']}")
    if "maximum" in schema and value > schema["maximum"]:
        errors.append(f"{where}: {value} is above the maximum {schema['maximum']}")
    if "minLength" in schema and len(value) < schema["minLength"]:
        errors.append(f"{where}: shorter than {schema['minLength']}")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append(f"{where}: {value!r} does not match {schema['pattern']}")
    if schema.get("format") == "date-time" and isinstance(value, str):
        try:
            datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            errors.append(f"{where}: {value!r} is not a date-time")
    if isinstance(value, dict):
        for key in schema.get("required") or ():
            if key not in value:
                errors.append(f"{path}.{key}: required")
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            sub = props.get(key) or (extra if isinstance(extra, Mapping) else None)
            if sub is not None and not (path == "" and key == "metadata"):
                errors += validate(sub, item, f"{path}.{key}")
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            errors += validate(schema["items"], item, f"{path}[{i}]")
    return errors


def cel_errors(new: Mapping[str, Any], old: Mapping[str, Any] | None) -> list[str]:
    """Python stand-ins for the CRD's ``x-kubernetes-validations`` on ``spec.job``."""
    errors = []
    job = (new.get("spec") or {}).get("job") or {}
    if "maxParallelism" in job and job.get("parallelism", 1) > job["maxParallelism"]:
        errors.append("spec.job.parallelism: job.parallelism must not exceed job.maxParallelism")
    old_job = ((old or {}).get("spec") or {}).get("job") or {}
    if "maxParallelism" in old_job and job.get("maxParallelism") != old_job["maxParallelism"]:
        errors.append("spec.job.maxParallelism: job.maxParallelism is immutable once set")
    return errors


def admit(
    obj: Mapping[str, Any], *, old: Mapping[str, Any] | None = None, cel: bool = True
) -> tuple[dict[str, Any], list[str]]:
    """(the object as stored, the errors that would reject it) for a create or an update."""
    schema = openapi_schema()
    stored = prune(schema, apply_defaults(schema, copy.deepcopy(dict(obj))), root=True)
    errors = validate(schema, stored)
    if cel:
        errors += cel_errors(stored, old)
    return stored, errors


def apply_merge_patch(value: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """RFC 7386: what an API server stores after a JSON merge patch."""
    result = copy.deepcopy(dict(value))
    for key, change in patch.items():
        if change is None:
            result.pop(key, None)
        elif isinstance(change, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = apply_merge_patch(result[key], change)
        elif isinstance(change, Mapping):
            result[key] = apply_merge_patch({}, change)
        else:
            result[key] = copy.deepcopy(change)
    return result


def admit_status(status: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    schema = status_schema()
    stored = prune(schema, copy.deepcopy(dict(status)))
    return stored, validate(schema, stored, ".status")
