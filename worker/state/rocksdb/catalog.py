"""What a RocksDB backend's database says about itself, in its default column family.

* ``meta/<state name>``: the JSON :class:`~streamjob.state.meta.StateMetaInfo` the state's
  column family (``state/<state name>``) is stored under: its kind, its serializers, and
  whether its values carry TTL timestamps. A database restored from a native checkpoint thus
  knows its states before the job registers them, and snapshots them unchanged if it never does.
* ``seq``: the next ListState element sequence number (u64), written with every batch that
  appends, so elements appended after a restore sort after the restored ones.
"""

from __future__ import annotations

import json
import struct

from streamjob.state import meta
from streamjob.state.rocksdb import db as db_mod

COLUMN_PREFIX = "state/"
_META = b"meta/"
_SEQ = b"seq"
_U64 = struct.Struct(">Q")


def column_name(state_name: str) -> str:
    return COLUMN_PREFIX + state_name


def load(database: db_mod.StateDB) -> tuple[dict[str, meta.StateMetaInfo], int]:
    """The stored meta info of every state, and the next list sequence number."""
    infos: dict[str, meta.StateMetaInfo] = {}
    default = database.default
    for key, value in database.scan(default, _META, _META[:-1] + b"0"):
        info = meta.StateMetaInfo.from_dict(json.loads(value.decode("utf-8")))
        infos[key[len(_META) :].decode("utf-8")] = info
    raw = default.get(_SEQ)
    return infos, 0 if raw is None else int(_U64.unpack(raw)[0])


def put_meta(batch: db_mod.Batch, database: db_mod.StateDB, info: meta.StateMetaInfo) -> None:
    data = json.dumps(info.to_dict(), separators=(",", ":")).encode("utf-8")
    batch.put(database.default, _META + info.name.encode("utf-8"), data)


def put_sequence(batch: db_mod.Batch, database: db_mod.StateDB, next_sequence: int) -> None:
    batch.put(database.default, _SEQ, _U64.pack(next_sequence))
