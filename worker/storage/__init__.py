"""Checkpoint storage: one contract, a local directory and any S3-compatible endpoint.

Re-exports the public names only. :mod:`.base` holds the contract, :mod:`.local` and :mod:`.s3`
implement it, :mod:`.factory` opens one from a URL, :mod:`.probe` checks it at start-up,
:mod:`.counting` counts its traffic, :mod:`.seaweedfs` starts a server for tests and benchmarks.
"""

from streamjob.storage.base import (
    MIN_PART_SIZE,
    CheckpointStorage,
    MultipartUpload,
    UploadState,
    join,
)
from streamjob.storage.counting import CountingStorage, StorageCounters
from streamjob.storage.errors import (
    BucketNotFound,
    InvalidKey,
    ObjectNotFound,
    PutIfAbsentUnsupported,
    StorageAccessDenied,
    StorageConfigError,
    StorageError,
    StorageUnreachable,
)
from streamjob.storage.factory import open_storage, parse_s3_url
from streamjob.storage.info import MultipartUploadInfo, ObjectInfo, StorageCapabilities
from streamjob.storage.local import LocalStorage
from streamjob.storage.options import S3Options

__all__ = [
    "MIN_PART_SIZE",
    "BucketNotFound",
    "CheckpointStorage",
    "CountingStorage",
    "InvalidKey",
    "LocalStorage",
    "MultipartUpload",
    "MultipartUploadInfo",
    "ObjectInfo",
    "ObjectNotFound",
    "PutIfAbsentUnsupported",
    "S3Options",
    "StorageAccessDenied",
    "StorageCapabilities",
    "StorageConfigError",
    "StorageCounters",
    "StorageError",
    "StorageUnreachable",
    "UploadState",
    "join",
    "open_storage",
    "parse_s3_url",
]
