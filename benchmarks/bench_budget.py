"""Does the study keep its budget, and do its estimates hold, on tables of several shapes?

Run with ``python benchmarks/bench_budget.py`` (``--sizes 2000,10000 --kinds numeric2,mixed5``
for a part; ``--budget 10m``). For each table of :mod:`tables` (numeric and mixed, binary and
5 classes) and each size (the table's rows, 70% of them for training as the study splits),
``dataworth study --csv ... --target label --budget ...`` runs in its own process, as a user
runs it, and the benchmark prints, from the run folder's ``budget.json``:

* the study's wall seconds against its budget, whether it wrote its report, its peak memory;
* per method: estimated, allotted and actual seconds, **actual / estimate**, and what it valued
  (the sampled methods, TMC and AME, are sized to their allotment, so for them the estimate
  that matters is the one for the units they ran: ``actual / estimate`` compares the actual
  seconds with the estimate scaled to those units);
* the largest silence between two lines the study printed (progress lines are promised at
  least every 30 s).

The goals: every study within its budget plus 10% for the report; every method's actual time
within 2x of its estimate; every method that values every row run on every table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from tables import KINDS, make_frame

_STAMP = re.compile(r"^\[\s*(\d+) s\]")


def _silence(lines: list[str]) -> int:
    """Longest gap, in seconds, between two stamped lines."""
    stamps = [int(m.group(1)) for m in map(_STAMP.match, lines) if m]
    return max((b - a for a, b in itertools.pairwise(stamps)), default=0)


def run_one(kind: str, rows: int, budget: str, folder: Path) -> dict:
    csv = folder / f"{kind}_{rows}.csv"
    if not csv.exists():
        make_frame(kind, rows).to_csv(csv, index=False)
    out = folder / f"run_{kind}_{rows}"
    # The study keeps its fits beside its run folders and a rerun reuses them: every run here
    # starts from an empty store, as a new user's first run does.
    shutil.rmtree(folder / ".cache", ignore_errors=True)
    argv = [sys.executable, "-m", "dataworth.cli", "study", "--csv", str(csv), "--target"]
    argv += ["label", "--budget", budget, "--out", str(out), "--overwrite"]
    start = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "PEAK_KB %M", *argv], capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - start
    peak = re.search(r"PEAK_KB (\d+)", done.stderr)
    budget_file = out / "budget.json"
    return {
        "kind": kind,
        "rows": rows,
        "code": done.returncode,
        "seconds": seconds,
        "peak_mb": int(peak.group(1)) / 1024 if peak else None,
        "report": (out / "report.html").exists(),
        "budget": json.loads(budget_file.read_text()) if budget_file.exists() else None,
        "silence": _silence(done.stderr.splitlines()),
        "tail": done.stderr.splitlines()[-3:],
    }


def _scaled_estimate(method: dict) -> float | None:
    """The estimate for the units the method ran (sampled methods), else its estimate."""
    estimate = method["estimate"]
    wanted, units = method.get("wanted"), method.get("units")
    if method["name"] in ("tmc", "tmc_groups", "ame") and wanted and units is not None:
        fixed = method.get("fixed", 0.0)
        done = units
        match = re.search(r"(\d+) of (\d+) permutations", method.get("valued", ""))
        if match:
            done = int(match.group(1))
        match = re.search(r"(\d+) random subsets", method.get("valued", ""))
        if match:
            done = int(match.group(1))
        return fixed + (estimate - fixed) * done / wanted
    return estimate


def show(result: dict, budget_seconds: float) -> None:
    kind, rows = result["kind"], result["rows"]
    kept = result["seconds"] <= 1.1 * budget_seconds
    print(
        f"\n== {kind}, {rows} rows: {result['seconds']:.0f} s of {budget_seconds:.0f} "
        f"({'kept' if kept else 'OVER'}), exit {result['code']}, report "
        f"{'written' if result['report'] else 'MISSING'}, peak {result['peak_mb'] or 0:.0f} MB, "
        f"longest silence {result['silence']} s"
    )
    if result["budget"] is None:
        print("   no budget.json:", *result["tail"], sep="\n   ")
        return
    print(f"   {'method':<28}{'estimate':>10}{'allotted':>10}{'actual':>9}{'act/est':>9}  valued")
    for method in result["budget"]["methods"]:
        actual = method.get("actual")
        scaled = _scaled_estimate(method)
        ratio = (
            f"{actual / scaled:.2f}"
            if method["run"] and actual is not None and scaled and scaled > 0.5
            else "-"
        )
        shown = f"{actual:.1f}" if actual is not None else "-"
        print(
            f"   {method['label'][:27]:<28}{method['estimate']:>10.1f}{method['allotted']:>10.1f}"
            f"{shown:>9}{ratio:>9}  {method.get('valued') or method.get('note', '')}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,10000,50000", help="table rows, comma separated")
    parser.add_argument("--kinds", default=",".join(KINDS), help="table kinds, comma separated")
    parser.add_argument("--budget", default="10m")
    parser.add_argument("--folder", default=None, help="where the tables and runs go")
    args = parser.parse_args(argv)
    units = {"s": 1, "m": 60, "h": 3600}
    budget_seconds = float(args.budget[:-1]) * units[args.budget[-1]]
    folder = Path(args.folder or tempfile.mkdtemp(prefix="dw-budget-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"tables and run folders in {folder}")
    for rows in (int(s) for s in args.sizes.split(",")):
        for kind in args.kinds.split(","):
            show(run_one(kind, rows, args.budget, folder), budget_seconds)


if __name__ == "__main__":
    main()
