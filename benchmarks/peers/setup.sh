#!/usr/bin/env bash
# Create the peers' own virtual environments (never the project's): pyDVL, OpenDataVal and TRAK.
#
#   bash benchmarks/peers/setup.sh        # idempotent; run.sh calls it
#
# Writes benchmarks/peers/.venv-pydvl, .venv-opendataval and .venv-trak (git-ignored) and
# benchmarks/peers/out/install.log, which records what was installed and every deviation from the
# peers' own pins, so the benchmark's output can say why.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-python3}"
OUT="$HERE/out"
mkdir -p "$OUT"
LOG="$OUT/install.log"
: >"$LOG"

PYDVL_VERSION="0.10.0"
ODV_VERSION="1.3.0"
TRAK_VERSION="0.3.2"
# The only PyTorch this machine may install: a local CPU build is served for exactly this pin.
# An unpinned torch would download several GB of CUDA wheels, so it is installed FIRST and every
# later install is constrained to it.
TORCH_PIN="torch==2.13.0"

log() { echo "$*" | tee -a "$LOG"; }

make_venv() {  # make_venv DIR: create once, upgrade nothing afterwards (reproducible reruns)
  if [ ! -x "$1/bin/python" ]; then
    "$PYTHON" -m venv "$1"
    "$1/bin/pip" install -q --upgrade pip >>"$LOG" 2>&1
  fi
}

# --- pyDVL: pure Python, no torch needed for the methods benchmarked ------------------------
V="$HERE/.venv-pydvl"
make_venv "$V"
if ! "$V/bin/python" -c "import pydvl" 2>/dev/null; then
  log "pydvl: installing pydvl==$PYDVL_VERSION with its own dependency pins"
  "$V/bin/pip" install -q "pydvl==$PYDVL_VERSION" >>"$LOG" 2>&1
fi
log "pydvl: $("$V/bin/python" -c 'import pydvl, sklearn, numpy; print("pydvl", pydvl.__version__, "sklearn", sklearn.__version__, "numpy", numpy.__version__)')"

# --- OpenDataVal -----------------------------------------------------------------------------
# opendataval 1.3.0 (its latest release, 2023-11) pins torch~=2.1.0, torchvision~=0.16.0,
# numpy<1.26, pandas<2, tqdm~=4.64.1, typer~=0.9.0, pykeops~=2.1.2. torch 2.1 is not what may be
# installed here (only the CPU build of torch 2.13.0), so pip cannot satisfy those pins. We install
# torch 2.13.0 first, then opendataval with --no-deps, then its import-time dependencies with
# relaxed pins (constrained to that torch). This deviation is printed by the benchmark.
V="$HERE/.venv-opendataval"
make_venv "$V"
# The check imports OpenDataVal the way run_opendataval.py does (torchvision stand-in first).
ODV_IMPORT="import sys, warnings; warnings.filterwarnings('ignore'); sys.path.insert(0, '$HERE'); import torch, transformers, _tv_stub; _tv_stub.install(); import opendataval.dataval"
if ! "$V/bin/python" -c "$ODV_IMPORT" 2>/dev/null; then
  CONSTRAINTS="$OUT/constraints-opendataval.txt"
  echo "$TORCH_PIN" >"$CONSTRAINTS"
  log "opendataval: installing $TORCH_PIN (CPU build) first"
  "$V/bin/pip" install -q "$TORCH_PIN" >>"$LOG" 2>&1
  log "opendataval: installing opendataval==$ODV_VERSION --no-deps (its pin torch~=2.1.0 conflicts with $TORCH_PIN)"
  "$V/bin/pip" install -q --no-deps "opendataval==$ODV_VERSION" >>"$LOG" 2>&1
  log "opendataval: installing its import-time dependencies with relaxed pins, constrained to $TORCH_PIN"
  "$V/bin/pip" install -q -c "$CONSTRAINTS" \
    "numpy<2" "pandas<3" "scikit-learn~=1.3" "scipy>=1.11" "matplotlib>=3.8" "tqdm" \
    "requests" "typer" "torcheval" "geomloss~=0.2.6" "transformers" >>"$LOG" 2>&1
  # torchvision is left out on purpose: PyPI has only CUDA builds of it, which fail to register
  # their operators against the CPU torch ("operator torchvision::nms does not exist"). It is
  # needed only by OpenDataVal's image datasets; run_opendataval.py puts a stand-in in its place
  # (_tv_stub.py) that raises if an image dataset is ever used.
  log "opendataval: torchvision not installed (no CPU build on PyPI); a stand-in replaces it"
fi
log "opendataval: $("$V/bin/python" -c 'import sys, warnings; warnings.filterwarnings("ignore"); sys.path.insert(0, "'$HERE'"); import torch, transformers, _tv_stub; _tv_stub.install(); import opendataval.dataval, opendataval, sklearn, numpy; from importlib.metadata import version; print("opendataval", version("opendataval"), "torch", torch.__version__, "sklearn", sklearn.__version__, "numpy", numpy.__version__)')"
# --- TRAK (MadryLab's traker): torch first (the CPU pin), then traker constrained to it ---------
# traker's optional CUDA projector (fast_jl) is not installed: it needs a CUDA toolkit. On the CPU
# TRAKer falls back to its BasicProjector (a Gaussian projection), which run_trak.py uses.
V="$HERE/.venv-trak"
make_venv "$V"
if ! "$V/bin/python" -c "import trak, torch" 2>/dev/null; then
  CONSTRAINTS="$OUT/constraints-trak.txt"
  echo "$TORCH_PIN" >"$CONSTRAINTS"
  log "trak: installing $TORCH_PIN (CPU build) first, then traker==$TRAK_VERSION (without fast_jl)"
  "$V/bin/pip" install -q "$TORCH_PIN" >>"$LOG" 2>&1
  "$V/bin/pip" install -q -c "$CONSTRAINTS" "traker==$TRAK_VERSION" >>"$LOG" 2>&1
fi
log "trak: $("$V/bin/python" -c 'import torch, numpy; from importlib.metadata import version; print("traker", version("traker"), "torch", torch.__version__, "numpy", numpy.__version__)')"
log "setup done"
