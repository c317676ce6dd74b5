"""Open a checkpoint storage from a URL: ``s3://bucket/prefix``, ``file:///abs/path`` or a path.

The single entry point the JobManager, TaskManagers, savepoint tools and file sinks use
(``checkpoints.dir``, ``savepoints.dir``, a sink's path). S3 settings come from the given
:class:`streamjob.storage.options.S3Options`, else from environment variables
(:meth:`S3Options.from_env`). The S3 module (and with it boto3) is imported only when an
``s3://`` URL is opened.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping

from streamjob.storage import base, errors, local, options

_VALID_FORMS = "s3://bucket/prefix, file:///absolute/path, or a local path"


def open_storage(
    url: str, opts: options.S3Options | None = None, *, environ: Mapping[str, str] | None = None
) -> base.CheckpointStorage:
    """The storage at ``url``; ``opts`` (or the environment) configures S3."""
    scheme, rest = _split(url)
    if scheme == "s3":
        bucket, prefix = parse_s3_url(url)
        from streamjob.storage import s3  # boto3 is imported only when S3 is used

        env = os.environ if environ is None else environ
        return s3.S3Storage(bucket, prefix, opts or options.S3Options.from_env(env))
    if scheme == "file":
        return local.LocalStorage(_file_path(url))
    if scheme == "":
        return local.LocalStorage(os.path.expanduser(rest))
    raise errors.StorageConfigError(
        f"unsupported storage URL {url!r}: scheme {scheme!r} is not one of s3, file "
        f"(write {_VALID_FORMS}; for GCS or Azure use their S3-compatible endpoint with s3://)"
    )


def parse_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix/`` -> ``("bucket", "some/prefix")``."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme.lower() != "s3" or not parsed.netloc:
        raise errors.StorageConfigError(f"not an S3 URL: {url!r} (write s3://bucket/prefix)")
    if parsed.query or parsed.fragment:
        raise errors.StorageConfigError(
            f"S3 URL {url!r} has a query or fragment: put options in S3Options or environment "
            "variables (AWS_ENDPOINT_URL, STREAMJOB_S3_PATH_STYLE, ...)"
        )
    bucket = parsed.netloc
    if not _valid_bucket(bucket):
        raise errors.StorageConfigError(
            f"S3 URL {url!r}: {bucket!r} is not a valid bucket name (3-63 characters: "
            "lowercase letters, digits, dots and hyphens)"
        )
    return bucket, parsed.path.strip("/")


def _split(url: str) -> tuple[str, str]:
    if "://" not in url:
        if not url:
            raise errors.StorageConfigError(f"empty storage URL: write {_VALID_FORMS}")
        return "", url
    scheme, _, rest = url.partition("://")
    return scheme.lower(), rest


def _file_path(url: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    if parsed.netloc not in ("", "localhost"):
        raise errors.StorageConfigError(
            f"file URL {url!r} names host {parsed.netloc!r}: write file:///absolute/path "
            "(three slashes) for a local directory"
        )
    path = urllib.parse.unquote(parsed.path)
    if not path.startswith("/"):
        raise errors.StorageConfigError(f"file URL {url!r} needs an absolute path")
    return path


def _valid_bucket(name: str) -> bool:
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789.-_")
    return 3 <= len(name) <= 63 and set(name) <= allowed and name[0].isalnum()
