#!/usr/bin/env bash
# Set up everything lgseg needs on a fresh Debian machine (Python 3.11, CPU): system packages,
# a virtualenv in .venv, pinned Python packages and MinkowskiEngine 0.5.4 built for the CPU.
# Safe to run again: it does nothing when the inputs below have not changed since the last run.
set -euo pipefail
cd "$(dirname "$0")"
VENV=.venv
STAMP="$VENV/.lgseg-install-stamp"
want=$(cat install.sh requirements.txt constraints.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "install.sh: .venv is up to date"; exit 0
fi

# System packages: OpenBLAS for MinkowskiEngine's CPU build.
if ! dpkg -s libopenblas-dev >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libopenblas-dev
fi

[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
# pip's warnings about extra index folders this machine lacks are noise; pip's own exit status
# still decides (pipefail), the filter never fails.
pip_quiet() { "${PIP[@]}" "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; }
# torch first, then everything else constrained to it (an unpinned torch pulls GBs of CUDA wheels).
pip_quiet install -q torch==2.13.0
pip_quiet install -q -c constraints.txt -r requirements.txt

# MinkowskiEngine 0.5.4 from its sdist; pip caches the built wheel, so a reinstall takes seconds.
if ! "$VENV/bin/python" -c "import importlib.util as u, sys; sys.exit(u.find_spec('MinkowskiEngine') is None)"; then
  echo "install.sh: building MinkowskiEngine 0.5.4 for the CPU (about 4 minutes the first time)"
  MAX_JOBS=2 pip_quiet install -q --no-deps --no-build-isolation \
    --config-settings="--global-option=--blas=openblas --cpu_only" minkowskiengine==0.5.4
fi

# CLIP without its torchvision dependency: lgseg uses only its tokenizer and model definition.
pip_quiet install -q --no-deps openai-clip==1.0.1

pip_quiet install -q -c constraints.txt --no-deps -e .
echo "$want" > "$STAMP"
echo "install.sh: done"
