"""Data layer: sources, preprocessing, splits and the Task."""

from dataworth.data.task import Task

__all__ = ["Task"]
