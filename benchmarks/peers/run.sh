#!/usr/bin/env bash
# The peer benchmark, in one command:   bash benchmarks/peers/run.sh
#
# 1. setup.sh: the peers' own virtual environments (benchmarks/peers/.venv-pydvl and
#    .venv-opendataval; never the project's), once.
# 2. make_tasks.py (project venv): breast cancer with 10% flipped labels and the synthetic task,
#    written as arrays every environment reads.
# 3. run_ours.py, run_pydvl.py, run_opendataval.py: each library's LOO, TMC-Shapley (10 and 30
#    permutations), Banzhaf and AME (where offered) on the same tasks, model and budget; one
#    after the other, so no two compete for the 2 cores.
# 4. compare.py (project venv): the same quality measures for every library, the ratios, the
#    peers' defaults that differ from the papers; writes out/results.md and out/results.csv.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
PROJECT_PY="${PROJECT_PY:-$ROOT/.venv/bin/python}"
cd "$HERE"
bash "$HERE/setup.sh"
"$PROJECT_PY" make_tasks.py
"$PROJECT_PY" run_ours.py
# The peers print progress bars on stderr; keep them in logs, show the one-line summaries.
"$HERE/.venv-pydvl/bin/python" run_pydvl.py 2>"$HERE/out/pydvl.log"
"$HERE/.venv-opendataval/bin/python" run_opendataval.py 2>"$HERE/out/opendataval.log"
"$PROJECT_PY" compare.py | tee "$HERE/out/results.txt"
