"""Run tasks on Dask: a LocalCluster on this machine (the default), or an existing scheduler.

Each task is one Dask task that calls ``run_task(store, id)``; all state is in
the store, so nothing large crosses the network and a driver that dies loses
nothing. Worker processes get the thread variables of the task's allocation
in their environment before they start, so Numba and BLAS load with them.
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid

from ...jobs import threads
from ...jobs.errors import BackendError, UserError
from ...jobs.runner import run_task
from ..progress import Monitor
from .base import Backend, SubmitOptions, SubmitResult


STOP_WAIT_SECONDS = 300.0  # Ctrl-C: how long the driver waits for its running tasks to checkpoint


def _run(store_path: str, task_id: str, backend: str, stop_file: str | None = None) -> str:
    return run_task(store_path, task_id, backend=backend, stop_file=stop_file).state


@contextlib.contextmanager
def _sigint_ignored():
    """Processes started inside ignore SIGINT (an ignored signal stays ignored in a child, and Python
    keeps it so): a Ctrl-C, which the terminal sends to every process of the group, reaches the
    driver only, and the driver asks the tasks to stop through the store (:meth:`_DaskBase.submit`)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _DaskBase(Backend):
    def _client(self, cpus: int, n_tasks: int):  # pragma: no cover - interface
        raise NotImplementedError

    def submit(self, store, task_ids):
        from distributed import as_completed

        cpus = int(store.spec_dict().get("resources", {}).get("cpus", 1))
        # Ctrl-C: the driver creates this file; each task sees it within a quarter second, checkpoints
        # and records its attempt as interrupted, as a signal would make it (Dask's workers get none)
        stop_file = store.path.resolve() / f".stop-request-{uuid.uuid4().hex[:12]}"
        with _sigint_ignored():
            client, closer = self._client(cpus, len(task_ids))
        outcomes: dict[str, str] = {}
        futures: dict = {}
        try:
            self._warm_up(client, store, task_ids)
            with Monitor(store, task_ids, enabled=self.options.progress):
                futures = {
                    client.submit(_run, str(store.path.resolve()), tid, self.name, str(stop_file),
                                  key=f"snnbatch-{tid}", pure=False): tid
                    for tid in task_ids
                }
                for fut in as_completed(futures):
                    tid = futures[fut]
                    try:
                        outcomes[tid] = fut.result()
                    except Exception:  # the worker process died (killed, out of memory)
                        outcomes[tid] = "interrupted"
        except KeyboardInterrupt:
            self._stop_tasks(stop_file, futures)
            raise
        finally:
            try:
                stop_file.unlink(missing_ok=True)
            except OSError:
                pass
            closer()
        return SubmitResult(waited=True, outcomes=outcomes)

    @staticmethod
    def _stop_tasks(stop_file, futures) -> None:
        """Ask every task of this submission to checkpoint and stop, and wait until they have (a
        second Ctrl-C stops waiting: the tasks then end as lost, and resume from their checkpoints)."""
        from distributed import wait

        try:
            stop_file.write_text(json.dumps({"time": time.time(), "pid": os.getpid()}))
        except OSError:
            return  # the store cannot be written: nothing the tasks could record either
        running = [f for f in futures if not f.done()]
        if running:
            print("\nstopping: each running task checkpoints and records its attempt (Ctrl-C again not to wait)",
                  file=sys.stderr, flush=True)
            wait(running, timeout=STOP_WAIT_SECONDS)

    def _warm_up(self, client, store, task_ids):
        """Compile each kind of kernel once on one worker, so the others load it from the disk cache."""
        from ...jobs.config import TaskConfig
        from ...jobs.warmup import distinct, warm

        wanted = set(task_ids)
        # the kernels a task compiles follow from its model and learning rule (warmup.signature): one config
        # validated per distinct pair of those sections, not every config of the sweep (10 s for 100,000)
        firsts: dict[str, dict] = {}
        for t in store.tasks():
            if t["id"] in wanted:
                firsts.setdefault(json.dumps([t["config"].get("model"), t["config"].get("learning")]), t["config"])
        configs = [TaskConfig.model_validate(c) for c in firsts.values()]
        plugins = list(store.root.attrs.get("plugins", []))
        futures = [client.submit(warm, c.model_dump(mode="json"), plugins, pure=False) for c in distinct(configs)]
        for fut in futures:
            try:
                fut.result()
            except Exception:
                pass  # the task itself will meet and record the same error


class LocalBackend(_DaskBase):
    name = "local"

    def _client(self, cpus, n_tasks):
        from distributed import Client, LocalCluster

        cores = os.cpu_count() or 1
        n_workers = self.options.max_parallel or max(1, cores // cpus)
        n_workers = max(1, min(n_workers, n_tasks))
        cluster = LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env=threads.environment(cpus) | {"SNNBATCH_CPUS": str(cpus)},
            silence_logs=logging.ERROR,
        )
        client = Client(cluster)

        def close():
            client.close()
            cluster.close()

        return client, close


class DaskBackend(_DaskBase):
    """Tasks on an existing Dask cluster, e.g. one started with dask-jobqueue."""

    name = "dask"

    def __init__(self, options: SubmitOptions | None = None):
        super().__init__(options)
        if options is not None and not options.scheduler_address:  # submitting needs one; status and cancel not
            raise UserError("--backend dask needs --scheduler-address (e.g. tcp://host:8786)")

    def _client(self, cpus, n_tasks):
        from distributed import Client

        address = self.options.scheduler_address
        try:  # for as long as Dask's distributed.comm.timeouts.connect (30 s unless configured)
            client = Client(address)
        except (OSError, TimeoutError) as exc:
            raise BackendError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
        return client, client.close
