"""Turning an exception raised by user code into a message the job's author can act on.

The message names the operator, the record (shortened) and the user's own line: the deepest
traceback frame that lies outside the streamjob package.
"""

from __future__ import annotations

import os
import traceback
from types import TracebackType

from streamjob import errors

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_MAX_RECORD_CHARS = 300


def _user_frame(tb: TracebackType | None) -> traceback.FrameSummary | None:
    found = None
    for frame in traceback.extract_tb(tb):
        if not os.path.abspath(frame.filename).startswith(_PACKAGE_DIR + os.sep):
            found = frame
    return found


def describe_record(record: object) -> str:
    text = repr(record)
    if len(text) > _MAX_RECORD_CHARS:
        text = text[:_MAX_RECORD_CHARS] + f"... ({len(text)} chars)"
    return text


def user_error(exc: BaseException, operator: str, record: object | None) -> errors.StreamJobError:
    """Wrap ``exc`` raised by user code in ``operator`` while processing ``record``."""
    if isinstance(exc, errors.UserFunctionError | errors.KeyTypeError):
        return exc
    frame = _user_frame(exc.__traceback__)
    where = (
        f'File "{frame.filename}", line {frame.lineno}, in {frame.name}: {frame.line}'
        if frame is not None
        else "(no frame of user code in the traceback)"
    )
    record_part = "" if record is None else f" on record {describe_record(record)}"
    message = (
        f"operator '{operator}' failed{record_part}: {type(exc).__name__}: {exc}\n  at {where}"
    )
    return errors.UserFunctionError(message, operator=operator, record=record)
