"""Writes canonical format version 1, as streamjob did before version 2, so tests can check that
version-1 checkpoints still restore. Production code only reads version 1
(:mod:`streamjob.state.canonical_v1` has the layout)."""

from __future__ import annotations

import struct

from streamjob import keycodec
from streamjob.state import canonical

_HEADER = struct.Struct(">4sHI")
_U32 = struct.Struct(">I")
_I64 = struct.Struct(">q")


def v1_body(v2_body: bytes) -> bytes:
    """The version-1 body holding the same meta and entries as a section body of any layout."""
    info = canonical.read_state_meta(v2_body)
    start = v2_body.index(b"{")
    meta = v2_body[start : start + _U32.unpack_from(v2_body, start - 4)[0]]
    out = bytearray(_U32.pack(len(meta)) + meta)
    for key, namespace, items in canonical.iter_state_entries(v2_body):
        for chunk in (keycodec.encode_key(key), canonical.encode_namespace(namespace)):
            out += _U32.pack(len(chunk)) + chunk
        out += _U32.pack(len(items))
        for user_key, ts, value in items:
            if user_key is not None:
                out += _U32.pack(len(user_key)) + user_key
            if info.ttl is not None:
                assert ts is not None
                out += _I64.pack(ts)
            out += _U32.pack(len(value)) + value
    return bytes(out)


def v1_blob(blob: bytes) -> bytes:
    """``blob`` rewritten as version 1: the header's version, every state section's layout."""
    key_group, sections = canonical.read_key_group(blob)
    parts = [_HEADER.pack(canonical.MAGIC, 1, key_group)]
    for name, body in sections:
        if name.startswith(canonical.STATE_SECTION_PREFIX):
            body = v1_body(body)
        parts.append(canonical.encode_section(name, body))
    return b"".join(parts)
