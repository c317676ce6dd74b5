"""Loading a job reference: ``module:function``, ``path.py:function`` or ``path.py``.

A job is a function taking a :class:`StreamEnvironment`. With a bare ``path.py`` the function
is ``build`` (or ``main`` taking an env). Errors say exactly what was looked for.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
from collections.abc import Callable
from typing import Any

from streamjob import errors

DEFAULT_FUNCTIONS = ("build", "job", "main")


def load_job(reference: str) -> Callable[[Any], Any]:
    module_part, _, function_name = reference.partition(":")
    if module_part.endswith(".py") or os.sep in module_part:
        module = _load_path(module_part, reference)
    else:
        try:
            module = importlib.import_module(module_part)
        except ImportError as exc:
            raise errors.JobReferenceError(
                f"job {reference!r}: cannot import module {module_part!r} ({exc}); give "
                "'package.module:function' importable from the current directory, or "
                "'path/to/job.py:function'"
            ) from exc
    names = (function_name,) if function_name else DEFAULT_FUNCTIONS
    for name in names:
        candidate = getattr(module, name, None)
        if callable(candidate):
            _check_signature(candidate, reference)
            return candidate  # type: ignore[no-any-return]
    available = sorted(
        n for n, v in vars(module).items() if inspect.isfunction(v) and not n.startswith("_")
    )
    raise errors.JobReferenceError(
        f"job {reference!r}: module {module.__name__!r} has no function "
        f"{' or '.join(repr(n) for n in names)}; functions it has: {', '.join(available) or 'none'}"
    )


#: job files executed by this process: (absolute path, mtime, size) -> module. A TaskManager
#: redeploys the same job after every failover and rescale; executing its file once keeps
#: module-level work (tables, models, connections) out of recovery time, as Flink keeps a
#: job's user-code class loader.
_LOADED: dict[tuple[str, int, int], Any] = {}


def _load_path(path: str, reference: str) -> Any:
    if not os.path.isfile(path):
        raise errors.JobReferenceError(
            f"job {reference!r}: file {path!r} does not exist (looked in {os.getcwd()!r})"
        )
    stat = os.stat(path)
    key = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size)
    module = _LOADED.get(key)
    if module is None:
        module = _LOADED[key] = _exec_path(path, reference)
    return module


def _exec_path(path: str, reference: str) -> Any:
    name = "streamjob_job_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise errors.JobReferenceError(f"job {reference!r}: cannot load {path!r} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    directory = os.path.dirname(os.path.abspath(path))
    if directory not in sys.path:
        sys.path.insert(0, directory)
    spec.loader.exec_module(module)
    return module


def _check_signature(function: Callable[..., Any], reference: str) -> None:
    try:
        params = [
            p
            for p in inspect.signature(function).parameters.values()
            if p.default is inspect.Parameter.empty
            and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        return
    if len(params) != 1:
        raise errors.JobReferenceError(
            f"job {reference!r}: {function.__name__}() must take exactly one argument, the "
            f"StreamEnvironment; it takes {len(params)}"
        )
