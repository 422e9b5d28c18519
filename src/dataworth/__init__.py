"""dataworth: which training points and groups are responsible for a model's performance."""

from dataworth.data.task import Task
from dataworth.errors import DataworthError

__version__ = "0.1.0"

__all__ = ["DataworthError", "Task", "__version__"]
