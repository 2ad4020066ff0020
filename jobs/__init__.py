"""One task's life on a compute node: build the trainer, train in steps, checkpoint, resume.

Never imports dask or submitit; imports Numba only inside the trainers, after
the thread settings of the task's allocation are in place.
"""
from .config import TaskConfig, task_id
from .runner import Outcome, StopFlag, run_task

__all__ = ["TaskConfig", "task_id", "run_task", "StopFlag", "Outcome"]
