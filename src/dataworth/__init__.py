"""dataworth: which training points and groups are responsible for a model's performance.

The public API (docs/design.md, section 8)::

    import dataworth as dw
    task = dw.load_dataset("breast_cancer", train_size=400, seed=0)
    u = dw.Utility(task, learner="logreg", metric="neg_log_loss")
    dw.loo(u, n_random=10, seed=0).to_frame()
"""

from dataworth.clean import CleanResult, clean
from dataworth.data import Task, check_data, list_datasets, load_dataset
from dataworth.engine.game import Evaluation, Game
from dataworth.engine.group_game import GroupGame
from dataworth.engine.store import EvaluationStore
from dataworth.engine.utility import Utility
from dataworth.errors import DataworthError
from dataworth.evaluate import evaluate_methods
from dataworth.evaluate.lds import lds
from dataworth.methods.ame import ame, ame_hierarchical, ame_shapley, banzhaf
from dataworth.methods.ame.plan import ame_memory_bytes, plan_ame
from dataworth.methods.compare import compare_values
from dataworth.methods.diagnostics import point_diagnostics
from dataworth.methods.gradients.similarity import gradient_similarity
from dataworth.methods.groups import build_groups, random_groups
from dataworth.methods.influence import influence
from dataworth.methods.knn.shapley import knn_shapley
from dataworth.methods.loo import leave_group_out, loo
from dataworth.methods.result import ValuationResult
from dataworth.methods.shapley import exact_shapley, tmc_shapley
from dataworth.methods.shapley.banzhaf import banzhaf_until
from dataworth.methods.shapley.beta import beta_shapley, exact_beta_shapley
from dataworth.methods.stability import rank_stability
from dataworth.methods.trees.oob import data_oob

__version__ = "0.1.0"

__all__ = [
    "CleanResult",
    "DataworthError",
    "Evaluation",
    "EvaluationStore",
    "Game",
    "GroupGame",
    "Task",
    "Utility",
    "ValuationResult",
    "__version__",
    "ame",
    "ame_hierarchical",
    "ame_memory_bytes",
    "ame_shapley",
    "banzhaf",
    "banzhaf_until",
    "beta_shapley",
    "build_groups",
    "check_data",
    "clean",
    "compare_values",
    "data_oob",
    "evaluate_methods",
    "exact_beta_shapley",
    "exact_shapley",
    "gradient_similarity",
    "influence",
    "knn_shapley",
    "lds",
    "leave_group_out",
    "list_datasets",
    "load_dataset",
    "loo",
    "plan_ame",
    "point_diagnostics",
    "random_groups",
    "rank_stability",
    "tmc_shapley",
]
