"""Same seed, same values: on every backend and chunk size, and after a killed run is resumed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier

from dataworth.engine.store import EvaluationStore
from dataworth.engine.utility import Utility
from dataworth.methods.groups import random_groups
from dataworth.methods.loo import leave_group_out, loo

LEARNERS = {
    "logreg": lambda: "logreg",
    "knn": lambda: "knn",
    "forest": lambda: RandomForestClassifier(n_estimators=8),
}


def _values(task, learner, backend, chunk_size, n_jobs=2):
    with Utility(task, learner=learner, backend=backend, n_jobs=n_jobs, chunk_size=chunk_size) as u:
        points = loo(u, n_random=12, seed=4).values
        groups = leave_group_out(u, random_groups(task.n_train, [0.2, 0.6], seed=1)).values
    return np.concatenate([points, groups])


@pytest.mark.parametrize("learner", list(LEARNERS))
def test_identical_values_across_chunk_sizes_and_processes(cancer_small, learner):
    reference = _values(cancer_small, LEARNERS[learner](), "serial", None)
    for backend, chunk in [("serial", 1), ("serial", 5), ("processes", 3)]:
        np.testing.assert_array_equal(
            _values(cancer_small, LEARNERS[learner](), backend, chunk), reference
        )


def test_identical_values_on_dask(cancer_small):
    pytest.importorskip("distributed")
    for learner in ("logreg", "forest"):
        reference = _values(cancer_small, LEARNERS[learner](), "serial", None)
        np.testing.assert_array_equal(
            _values(cancer_small, LEARNERS[learner](), "dask", 4), reference
        )


_SCRIPT = textwrap.dedent(
    """
    import sys
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    from dataworth import Task
    from dataworth.engine.utility import Utility
    from dataworth.methods.loo import loo

    def build():
        X, y = load_breast_cancer(return_X_y=True)
        X_tr, X_te, y_tr, y_te = train_test_split(X, y, train_size=80, stratify=y, random_state=0)
        s = StandardScaler().fit(X_tr)
        return Task.from_arrays(s.transform(X_tr), y_tr, s.transform(X_te), y_te)

    def utility(store):
        return Utility(build(), learner=RandomForestClassifier(n_estimators=25),
                       metric="accuracy", store=store, chunk_size=1)

    if __name__ == "__main__":
        loo(utility(sys.argv[1]))
    """
)


def test_killed_run_resumes_without_refitting(tmp_path):
    script = tmp_path / "long_run.py"
    script.write_text(_SCRIPT)
    store_path = tmp_path / "store.sqlite"
    sys.path.insert(0, str(tmp_path))
    try:
        import long_run
    finally:
        sys.path.remove(str(tmp_path))
    fingerprint = long_run.utility(None).fingerprint

    proc = subprocess.Popen([sys.executable, str(script), str(store_path)])
    stored = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if store_path.exists():
            with EvaluationStore(store_path) as store:
                stored = store.count(fingerprint)
            if stored >= 10:
                break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with EvaluationStore(store_path) as store:
        stored = store.count(fingerprint)
    assert 10 <= stored < 81

    with long_run.utility(store_path) as u:
        resumed = loo(u)
    assert resumed.n_fitted == 81 - stored  # nothing stored was refitted
    with long_run.utility(None) as u:
        clean = loo(u)
    np.testing.assert_array_equal(resumed.values, clean.values)


def test_processes_backend_works_from_a_script_without_main_guard(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text(
        textwrap.dedent(
            """
            import numpy as np
            import dataworth as dw
            task = dw.load_dataset("iris", train_size=60, seed=0)
            print("body ran")
            with dw.Utility(task, learner="knn", backend="processes", n_jobs=2, chunk_size=5) as u:
                print(dw.loo(u, n_random=8, seed=0).values.round(6).tolist())
            """
        )
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=True
    )
    assert out.stdout.count("body ran") == 1  # workers never re-run the user's script
    assert out.stdout.strip().splitlines()[-1].startswith("[")
