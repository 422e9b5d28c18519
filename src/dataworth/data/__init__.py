"""Data layer: sources, preprocessing, splits and the Task."""

from dataworth.data.checks import DataCheckWarning, Finding
from dataworth.data.describe import DatasetDescription, describe_dataset
from dataworth.data.load import check_data, load_dataset
from dataworth.data.sources import (
    DatasetInfo,
    RawData,
    get_dataset,
    list_datasets,
    make_synthetic,
    register_dataset,
)
from dataworth.data.task import Task

__all__ = [
    "DataCheckWarning",
    "DatasetDescription",
    "DatasetInfo",
    "Finding",
    "RawData",
    "Task",
    "check_data",
    "describe_dataset",
    "get_dataset",
    "list_datasets",
    "load_dataset",
    "make_synthetic",
    "register_dataset",
]
