#!/usr/bin/env bash
# Set up everything lgseg needs on a fresh Debian machine (Python 3.11): system packages, a
# virtualenv in .venv, pinned Python packages, spconv 2.3.8 and MinkowskiEngine 0.5.4 (CPU build).
# With an NVIDIA GPU (nvidia-smi works) it installs torch's CUDA build and spconv's CUDA wheel;
# MinkowskiEngine stays a CPU build there (its last release does not build against CUDA 12/13).
# Safe to run again: it does nothing when the inputs below have not changed since the last run.
set -euo pipefail
cd "$(dirname "$0")"
VENV=.venv
STAMP="$VENV/.lgseg-install-stamp"

# The GPU: the driver's CUDA version picks spconv's wheel (its newest is built for CUDA 12.6,
# which newer drivers run too). torch 2.14.1 from PyPI is a CUDA 13 build, so it needs a driver
# for CUDA >= 13.0; for an older driver set LGSEG_TORCH_INDEX to a PyTorch wheel index of a
# CUDA version the driver runs (not tested by this project).
SPCONV=(spconv==2.3.8 cumm==0.7.11)
TORCH_INDEX=()
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
  cuda=$(nvidia-smi | sed -n 's/.*CUDA Version: *\([0-9]*\)\.\([0-9]*\).*/\1 \2/p' | head -n 1)
  read -r major minor <<<"${cuda:-0 0}"
  v=$((major * 100 + minor))
  if   [ "$v" -ge 1206 ]; then cu=cu126
  elif [ "$v" -ge 1204 ]; then cu=cu124
  elif [ "$v" -ge 1201 ]; then cu=cu121
  elif [ "$v" -ge 1108 ]; then cu=cu118
  else echo "install.sh: the NVIDIA driver runs CUDA ${major}.${minor}; spconv needs >= 11.8: update the driver" >&2; exit 1
  fi
  if [ "$v" -lt 1300 ] && [ -z "${LGSEG_TORCH_INDEX:-}" ]; then
    echo "install.sh: the NVIDIA driver runs CUDA ${major}.${minor}, torch 2.14.1 from PyPI needs CUDA 13;" \
         "update the driver, or set LGSEG_TORCH_INDEX to a PyTorch wheel index for CUDA <= ${major}.${minor}" >&2
    exit 1
  fi
  SPCONV=("spconv-$cu==2.3.8" "cumm-$cu==0.7.11")
  [ -n "${LGSEG_TORCH_INDEX:-}" ] && TORCH_INDEX=(--index-url "$LGSEG_TORCH_INDEX" --extra-index-url https://pypi.org/simple)
  echo "install.sh: NVIDIA GPU with CUDA ${major}.${minor}: torch's CUDA build and ${SPCONV[0]}"
fi

want=$( (cat install.sh requirements.txt constraints.txt pyproject.toml; echo "${SPCONV[*]} ${TORCH_INDEX[*]}") \
        | sha256sum | cut -d' ' -f1)
# `dvc plots show`'s page template with Vega inlined (.dvc/plots/page.html, git-ignored), so the
# page draws offline; written on every run (a fresh clone has none), from the pinned package.
plots_page() { "$VENV/bin/python" stages/plots_page.py; }
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  plots_page
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
# torch first, with the torchvision built for it (segment-anything and timm import it), then everything
# else constrained to them (an unpinned torch pulls other builds).
pip_quiet install -q "${TORCH_INDEX[@]}" torch==2.14.1 torchvision==0.29.1
pip_quiet install -q -c constraints.txt -r requirements.txt
# spconv: prebuilt wheels, no compiler; one wheel serves any torch (it does not link torch's C++ ABI)
pip_quiet install -q -c constraints.txt "${SPCONV[@]}"

# MinkowskiEngine 0.5.4 from its sdist. Its compiled part links torch's C++ library, so a build for
# another torch fails to import: the check imports it (after the collections names it still uses,
# as lgseg/models/backends/minkowski.py provides them), and the built wheel is cached per torch
# version, so a reinstall with the same torch takes seconds. numpy.distutils, which its setup.py
# uses, needs the standard library's distutils (SETUPTOOLS_USE_DISTUTILS=stdlib; Python 3.11 has it).
me_works() {
  "$VENV/bin/python" -c "import collections, collections.abc
for n in ('Sequence', 'Mapping', 'MutableMapping', 'Iterable', 'Callable'): setattr(collections, n, getattr(collections.abc, n))
import MinkowskiEngine" >/dev/null 2>&1
}
if ! me_works; then
  echo "install.sh: building MinkowskiEngine 0.5.4 for the CPU against torch 2.14.1 (about 4 minutes the first time)"
  SETUPTOOLS_USE_DISTUTILS=stdlib MAX_JOBS=2 pip_quiet install -q --no-deps --no-build-isolation --force-reinstall \
    --cache-dir "${XDG_CACHE_HOME:-$HOME/.cache}/lgseg/pip-torch-2.14.1" \
    --config-settings="--global-option=--blas=openblas --cpu_only" minkowskiengine==0.5.4
  me_works || { echo "install.sh: MinkowskiEngine 0.5.4 was built but does not import" >&2; exit 1; }
fi

# CLIP without its dependencies (pkg_resources, ftfy pins): lgseg loads its tokenizer and model
# definition as modules of their own (lgseg/text/clip_text.py).
pip_quiet install -q --no-deps openai-clip==1.0.1

pip_quiet install -q -c constraints.txt --no-deps -e .
plots_page
echo "$want" > "$STAMP"
echo "install.sh: done"
