"""SLURM job arrays through submitit: fire and forget, preemption-safe.

One array per chunk of tasks (never one ``sbatch`` per task); chunks respect
the cluster's ``MaxArraySize`` (which bounds the array *index*, so a chunk
holds at most MaxArraySize elements, indexed 0..n-1). Each element unpickles
a tiny :class:`TaskRunner` (store path and task id, nothing else) and runs the
task from the store; the submitting process may exit right after.

Inside an element, training runs in a thread while the main thread waits, so
signals are handled promptly:

* ``USR2`` (sent ``signal_delay_s`` before the time limit, and on preemption
  with ``preempt_send_user_signal``): submitit calls
  :meth:`TaskRunner.checkpoint`, which stops training at the next iteration
  with a checkpoint and hands submitit a resubmission; submitit requeues the
  element with ``scontrol requeue``.
* ``SIGTERM`` (``scontrol requeue``, preemption without a user signal, or
  ``scancel``): checkpoint and exit; SLURM itself requeues or ends the job.
* the element's own deadline (start + time limit − ``resources.deadline_margin``): checkpoint and
  requeue itself, in case no signal comes.

Every attempt and why it ended is in the task's status; a task requeued more
than ``resources.max_requeues`` times is marked failed.

A halving sweep needs no process on the login node: the element whose task parks last decides the
rung (:mod:`snnbatch.jobs.halving`) and submits the promoted tasks as the next rung's array itself;
what it submitted, or why it could not, is in ``halving/rung-<k>.submitted.json`` beside the decision
(``snnbatch resume`` submits them when it could not).
"""
from __future__ import annotations

import contextlib
import io
import math
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import submitit

from ...jobs import threads
from ...jobs.config import Resources, parse_duration
from ...jobs.errors import BackendError, StoreWriteError
from ...jobs.runner import StopFlag, run_task
from ...jobs.store import TaskStore, is_store_full_or_readonly
from .base import Backend, SubmitResult

SIGNAL_DELAY_S = 120
THREAD_SETUP = [
    f"export {var}=${{SLURM_CPUS_PER_TASK:-1}}"
    for var in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
]


def run(cmd: list[str], timeout: float = 60.0, check: bool = True) -> subprocess.CompletedProcess:
    """Every scheduler command but sbatch (which submitit runs) goes through here; a failure names the
    command, its exit code and its output."""
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise not_found(cmd[0]) from None
    except subprocess.TimeoutExpired:
        raise BackendError(f"'{shlex.join(cmd)}' did not answer within {timeout:.0f} s") from None
    if check and r.returncode != 0:
        raise failed(cmd, r.returncode, r.stdout + r.stderr)
    return r


def not_found(command: str) -> BackendError:
    return BackendError(f"'{command}' not found: is this a SLURM login node?")


def failed(cmd: list[str], returncode: int, output: str) -> BackendError:
    return BackendError(f"'{shlex.join(map(str, cmd))}' failed with exit code {returncode}\n{output.strip()[-2000:]}")


def max_array_size() -> int:
    """The cluster's MaxArraySize (array indices must be below it)."""
    out = run(["scontrol", "show", "config"], timeout=30).stdout
    m = re.search(r"^MaxArraySize\s*=\s*(\d+)", out, re.MULTILINE)
    return int(m.group(1)) if m else 1001


def submit_limit() -> tuple[int | None, str]:
    """How many more jobs may be queued now, and which limit says so (``None``: no limit known).

    A job is an array element here. The limits: ``MaxJobCount`` (``scontrol show config``, all users'
    jobs) and, when accounting answers, the ``MaxSubmitJobs`` of this user's associations (the lowest of
    them), less the jobs already queued or running (``squeue -r``: one per array element). QOS limits
    are not read.
    """
    import getpass

    user = getpass.getuser()
    limits = []
    try:
        out = run(["scontrol", "show", "config"], timeout=30, check=False).stdout
        m = re.search(r"^MaxJobCount\s*=\s*(\d+)", out, re.MULTILINE)
        if m:
            limits.append((int(m.group(1)), "MaxJobCount", []))
        if _have("sacctmgr"):
            r = run(["sacctmgr", "-n", "-P", "show", "assoc", "where", f"user={user}", "format=MaxSubmit"],
                    timeout=15, check=False)
            values = [int(v) for v in r.stdout.split() if v.strip().isdigit()] if r.returncode == 0 else []
            if values:
                limits.append((min(values), "MaxSubmitJobs", ["-u", user]))
        if not limits:
            return None, ""
        room = []
        for limit, name, who in limits:
            r = run(["squeue", "-h", "-r", "-o", "%i", *who], timeout=30, check=False)
            queued = len(r.stdout.split()) if r.returncode == 0 else 0
            room.append((max(0, limit - queued), f"{name} {limit}, {queued} queued"))
        return min(room)
    except BackendError:
        return None, ""


def chunks(items: list, size: int) -> list[list]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def signal_delay(limit_s: float) -> int:
    """Seconds before the time limit at which SLURM sends USR2."""
    return int(min(SIGNAL_DELAY_S, max(10, limit_s // 3)))


# ------------------------------------------------------------------ on the compute node


class TaskRunner(submitit.helpers.Checkpointable):
    """What one array element runs: ``TaskRunner()(store_path, task_id)``."""

    def __init__(self):
        self._deadline_at_limit = 0.0
        self._signal_delay = SIGNAL_DELAY_S
        self._stop: StopFlag | None = None
        self._thread: threading.Thread | None = None
        self._outcome = None

    def __getstate__(self):  # only the class travels in the pickle
        return {}

    def __setstate__(self, state):
        self.__init__()

    def __call__(self, store_path: str, task_id: str) -> str:
        import signal

        env = submitit.JobEnvironment()
        ts = TaskStore(store_path, task_id)
        cfg = ts.config()
        status = ts.status()
        attempts = status.get("attempts", [])
        if status.get("state") == "done":
            continue_chain(store_path, [task_id])
            return "done"
        if len(attempts) > cfg.resources.max_requeues:
            ts.update_status(state="failed", error_line=f"requeue budget exhausted after {len(attempts)} attempts "
                             f"(resources.max_requeues = {cfg.resources.max_requeues})")
            return "failed"
        limit = cfg.resources.time_seconds
        self._deadline_at_limit = time.time() + limit
        self._signal_delay = signal_delay(limit)
        deadline = time.time() + limit - cfg.resources.deadline_margin_seconds
        self._stop = StopFlag()
        # SIGTERM: `scontrol requeue`, a preemption without a user signal, or scancel
        signal.signal(signal.SIGTERM, lambda *_: self._stop.request("sigterm (requeue, preemption or cancel)"))
        cpus = int(os.environ.get("SLURM_CPUS_PER_TASK", cfg.resources.cpus))

        def target():
            self._outcome = run_task(store_path, task_id, stop=self._stop, deadline=deadline, backend="slurm",
                                     job_id=str(env.job_id), cpus=cpus)

        self._thread = threading.Thread(target=target, name=f"task-{task_id}")
        self._thread.start()
        while self._thread.is_alive():
            self._thread.join(timeout=0.5)
        outcome = self._outcome
        if outcome.decided:  # this element decided a halving rung: it submits the next one
            submit_next_rung(store_path, outcome.decided[-1])
        if outcome.state == "leased":
            return "running elsewhere"  # another live process holds this task
        if outcome.state == "interrupted" and outcome.reason == "deadline":
            env._requeue(0)  # no signal came before our own deadline: requeue ourselves
        if outcome.state in ("done", "failed", "pruned", "parked"):
            continue_chain(store_path, [task_id])  # the last of a submission left at a queue limit submits the rest
        if outcome.state == "failed":
            raise RuntimeError(f"task {task_id} failed: {(outcome.error or '').strip().splitlines()[-1:]}")
        return outcome.state

    def checkpoint(self, store_path: str, task_id: str):
        """USR2: stop at the next iteration with a checkpoint, then let submitit requeue us.

        USR2 comes ``signal_delay_s`` before the time limit (slurmctld checks limits every
        30 s, so up to 30 s earlier) or at a preemption: which one is told by the time left.
        """
        if self._stop is not None:
            left = self._deadline_at_limit - time.time()
            self._stop.request("timeout" if left <= self._signal_delay + 45 else "preemption")
        if self._thread is not None:
            self._thread.join()
        if self._outcome is not None and self._outcome.state != "interrupted":
            return None  # done or failed: nothing to requeue
        ts = TaskStore(store_path, task_id)
        cfg = ts.config()
        if len(ts.status().get("attempts", [])) > cfg.resources.max_requeues:
            ts.update_status(state="failed", error_line="requeue budget exhausted "
                             f"(resources.max_requeues = {cfg.resources.max_requeues})")
            return None
        return submitit.helpers.DelayedSubmission(TaskRunner(), store_path, task_id)


class PackRunner(submitit.helpers.Checkpointable):
    """What a packed array element runs: ``PackRunner()(store_path, task_ids)``.

    It runs the unfinished tasks of its pack (:func:`snnbatch.jobs.pack.unfinished`) in
    ``node_cpus // cpus`` lanes side by side (one without ``node_cpus``), each lane a process
    (:mod:`snnbatch.jobs.pack`) that it hands one task at a time. A lane that dies (a crash, a kill)
    is replaced, and its task runs once more in the new lane, from its last checkpoint (within the
    task's requeue budget); if that lane dies with it too, the task is left for the next start of the
    element or ``resume``. Signals are
    passed on to the lanes: their running tasks checkpoint and stop, none is started after, and the
    element is requeued as an unpacked one is, to run only what is left. The element ends without an
    error when its tasks have ended, failed ones included (the store says which failed).
    """

    def __init__(self):
        self._stop_reason: str | None = None
        self._lanes: list[subprocess.Popen] = []
        self._threads: list[threading.Thread] = []
        self._outcomes: dict[str, dict] = {}
        self._retried: set[str] = set()  # tasks whose lane died once: run again, once
        self._lock = threading.Lock()

    def __getstate__(self):  # only the class travels in the pickle
        return {}

    def __setstate__(self, state):
        self.__init__()

    def __call__(self, store_path: str, task_ids: list[str]) -> str:
        import signal

        from ...jobs.pack import unfinished

        env = submitit.JobEnvironment()
        todo = unfinished(store_path, task_ids)
        if not todo:
            continue_chain(store_path, task_ids)
            return "nothing left to run"
        res = Resources.model_validate(TaskStore(store_path, todo[0]).config_dict.get("resources", {}))
        limit = res.time_seconds
        limit_at = time.time() + limit
        deadline = limit_at - res.deadline_margin_seconds
        signal.signal(signal.SIGTERM, lambda *_: self._pass_on(signal.SIGTERM, "sigterm"))
        width = min(res.side_by_side, len(todo))
        cores = lane_cores(width, res.cpus)
        command = [sys.executable, "-m", "snnbatch.jobs.pack", "lane", store_path, "--job-id", str(env.job_id),
                   "--deadline", repr(deadline), "--limit-at", repr(limit_at), "--signal-delay",
                   str(signal_delay(limit)), "--cpus", str(res.cpus)]
        lane_env = {**os.environ, **threads.environment(res.cpus), "SLURM_CPUS_PER_TASK": str(res.cpus),
                    "SNNBATCH_CPUS": str(res.cpus)}
        queue = list(todo)
        for i in range(width):
            extra = ["--cpu-list", ",".join(map(str, cores[i]))] if cores else []
            t = threading.Thread(target=self._lane, args=(command + extra, lane_env, queue, len(todo)),
                                 name=f"lane-{i}")
            self._threads.append(t)
            t.start()
        for t in self._threads:
            while t.is_alive():
                t.join(timeout=0.5)
        for o in self._outcomes.values():
            if o.get("decided"):  # a lane's task decided a halving rung: this element submits the next one
                submit_next_rung(store_path, o["decided"][-1])
        if self._stop_reason == "deadline" and unfinished(store_path, task_ids):
            env._requeue(0)  # no signal came before our own deadline: requeue ourselves
        elif self._stop_reason is None:
            continue_chain(store_path, task_ids)
        states = [o["state"] for o in self._outcomes.values()]
        return ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states))) or "nothing run"

    def _lane(self, command: list[str], env: dict, queue: list[str], restarts: int) -> None:
        """Feed one lane process task ids from ``queue`` until it is empty or a stop is asked; a lane that
        dies is started again (at most ``restarts`` times), and the task it died with is handed to it
        once more (a second death leaves it lost)."""
        import json

        proc = None
        try:
            while True:
                with self._lock:
                    if self._stop_reason or not queue:
                        return
                    if proc is None or proc.poll() is not None:
                        if restarts < 0:
                            return
                        restarts -= 1
                        proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                                                text=True, bufsize=1)
                        self._lanes.append(proc)
                    tid = queue.pop(0)
                try:
                    proc.stdin.write(tid + "\n")
                    proc.stdin.flush()
                    line = proc.stdout.readline()
                except OSError:
                    line = ""
                if not line:  # the lane died with this task: once, a new lane runs it again
                    proc.wait()
                    with self._lock:
                        again = tid not in self._retried and not self._stop_reason
                        if again:
                            self._retried.add(tid)
                            queue.insert(0, tid)
                            restarts += 1  # the new lane for it is not one of the budget for lost tasks
                    if not again:  # left for the next start of the element or resume
                        self._outcomes[tid] = {"task": tid, "state": "lost", "reason": f"lane exit {proc.returncode}"}
                    continue
                outcome = json.loads(line)
                self._outcomes[tid] = outcome
                if outcome.get("state") == "interrupted":
                    with self._lock:  # our own deadline (or a signal): start nothing more
                        self._stop_reason = self._stop_reason or outcome.get("reason") or "interrupted"
        finally:
            if proc is not None:
                with contextlib.suppress(OSError):
                    proc.stdin.close()
                proc.wait()

    def _pass_on(self, signum: int, reason: str) -> None:
        with self._lock:
            self._stop_reason = self._stop_reason or reason
            lanes = list(self._lanes)
        for proc in lanes:
            if proc.poll() is None:
                with contextlib.suppress(OSError):
                    proc.send_signal(signum)

    def checkpoint(self, store_path: str, task_ids: list[str]):
        """USR2 (a coming time limit or a preemption): the lanes' tasks checkpoint and stop; then submitit
        requeues the element if any of its tasks is unfinished."""
        import signal

        from ...jobs.pack import unfinished

        self._pass_on(signal.SIGUSR2, "usr2")
        for t in self._threads:
            t.join()
        if not unfinished(store_path, task_ids):
            return None  # every task ended: nothing to requeue
        return submitit.helpers.DelayedSubmission(PackRunner(), store_path, task_ids)


def lane_cores(width: int, cpus: int) -> list[list[int]] | None:
    """The cores of each of ``width`` lanes of ``cpus`` cores, when this process may use enough of them
    (else None: the lanes share the element's cores, each still limited to ``cpus`` threads)."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None
    if len(allowed) < width * cpus:
        return None
    return [allowed[i * cpus:(i + 1) * cpus] for i in range(width)]


# ------------------------------------------------------------------ on the login node


def elements(task_ids: list[str], res: Resources) -> list[list[str]]:
    """The tasks of each array element, in plan order: ``resources.per_element`` consecutive tasks each."""
    return chunks(task_ids, res.per_element)


def executor_parameters(res: Resources, name: str, max_parallel: int | None, n: int) -> dict:
    """``n``: array elements. A packed element asks for ``node_cpus`` (else ``cpus``) cores and the memory
    of the tasks it runs side by side."""
    params = {
        "job_name": f"snnbatch-{name}",
        "cpus_per_task": res.node_cpus or res.cpus,
        "mem": f"{res.memory_mb * min(res.side_by_side, res.per_element)}M",
        "time": max(1, math.ceil(parse_duration(res.time) / 60)),
        "signal_delay_s": signal_delay(parse_duration(res.time)),
        "setup": list(THREAD_SETUP),
        "array_parallelism": max_parallel or n,
        "stderr_to_stdout": True,
        "additional_parameters": dict(res.sbatch_extra),
    }
    for key in ("partition", "account", "qos", "constraint"):
        if getattr(res, key):
            params[key] = getattr(res, key)
    return params


class _OfflineExecutor(submitit.SlurmExecutor):
    """The same executor on a machine without ``srun``: it renders the sbatch script, never submits."""

    @classmethod
    def affinity(cls) -> int:
        return 1


class SlurmBackend(Backend):
    name = "slurm"

    def _executor(self, path: Path, name: str, res: Resources, n: int, offline: bool = False):
        folder = str(Path(path).resolve() / "slurm" / "%A")
        if not offline and submitit.SlurmExecutor.affinity() < 0:  # submitit looks for srun
            raise not_found("srun")
        # a packed element's requeues are shared by its tasks, each of which keeps its own budget
        budget = res.max_requeues * res.per_element
        ex = (_OfflineExecutor if offline else submitit.SlurmExecutor)(folder=folder, max_num_timeout=budget)
        ex.update_parameters(**executor_parameters(res, name, self.options.max_parallel, n))
        return ex

    def dry_run(self, store_path, name, resources, task_ids):
        """The arrays, resources, core-hours and the sbatch script of the first array. Writes nothing."""
        try:
            size, source = max_array_size(), "MaxArraySize"
        except BackendError:
            size, source = 1001, "SLURM's default MaxArraySize; scontrol did not answer"
        packs = elements(task_ids, resources)
        arrays = chunks(packs, size)
        ex = self._executor(store_path, name, resources, len(arrays[0]) if arrays else 0, offline=True)
        params = dict(ex.parameters)
        params["map_count"] = len(arrays[0]) if arrays else 0
        script = submitit.slurm.slurm._make_sbatch_string(command=ex._submitit_command_str, folder=ex.folder,
                                                          **params)
        cores = resources.node_cpus or resources.cpus
        at_once = min(resources.side_by_side, resources.per_element)
        memory = resources.memory if at_once == 1 else params["mem"]
        hours = len(packs) * cores * resources.time_seconds / 3600
        packing = []
        if resources.packed:
            packing = [f"packed: {resources.per_element} tasks per element ({len(packs)} elements), "
                       f"{at_once} side by side with {resources.cpus} "
                       f"cpu each, the others one after another"]
        room, limit = submit_limit()
        if room is not None and len(packs) > room:
            packing.append(f"queue limit ({limit}): {room} element(s) now, the rest submitted by the last "
                           "element of each chunk to end")
        return "\n".join([
            f"{len(arrays)} array(s) for {len(task_ids)} tasks ({source} {size}): "
            + ", ".join(f"[0-{len(a) - 1}]" for a in arrays),
            *packing,
            f"each element: {cores} cpu, {memory}, {resources.time}; at most "
            f"{self.options.max_parallel or 'all'} at once; {hours:.1f} core-hours requested",
            "sbatch script of the first array:",
            script,
        ])

    def submit(self, store, task_ids):
        res = Resources.model_validate(store.spec_dict().get("resources", {}))
        packed = res.packed
        units = elements(task_ids, res) if packed else task_ids
        room, limit = submit_limit()
        later: list = []
        if room is not None and len(units) > room:
            if room == 0:
                raise QueueFull(f"the queue is full ({limit}): no task was submitted; "
                                   "'snnbatch resume' submits them once there is room")
            units, later = units[:room], units[room:]
        arrays = chunks(units, max_array_size())
        chain = None
        if later:  # written first: an element may end before this submit returns
            chain = _write_chain(store.path, [t for u in units for t in (u if packed else [u])],
                                 [t for u in later for t in (u if packed else [u])], limit)
        jobs_by_task: dict[str, dict] = {}
        lines = []
        for chunk in arrays:
            ex = self._executor(store.path, store.name, res, len(chunk))
            try:
                jobs = _submit_array(ex, str(store.path.resolve()), chunk, packed)
            except Exception as exc:  # sbatch refused (partition, account, limits ...), or is missing
                if chain is not None:
                    chain.unlink(missing_ok=True)  # no element of it may take the rest: resume does
                if jobs_by_task:
                    store.record_submission(list(jobs_by_task), "slurm", jobs_by_task)
                raise _submission_error(exc, store.path, len(jobs_by_task), len(task_ids)) from None
            array_id = jobs[0].job_id.split("_")[0]
            n = sum(map(len, chunk)) if packed else len(chunk)
            lines.append(f"submitted array {array_id} with {n} tasks"
                         + (f" in {len(chunk)} elements (resources.pack)" if packed else ""))
            for unit, job in zip(chunk, jobs):
                for tid in unit if packed else [unit]:
                    jobs_by_task[tid] = {"job_id": job.job_id, "array_id": array_id,
                                         "log": str(job.paths.stdout)}
        store.record_submission(list(jobs_by_task), "slurm", jobs_by_task)
        if later:
            rest = len(task_ids) - len(jobs_by_task)
            lines.append(f"submitted {len(jobs_by_task)} of {len(task_ids)} tasks, as many as the queue takes now "
                         f"({limit}); the other {rest} are submitted by the last element of these arrays to end, "
                         "as far as the limit allows then ('snnbatch resume' submits them too)")
        lines.append(f"follow with 'snnbatch status {store.path}'; the jobs go on if you log out")
        return SubmitResult(waited=False, jobs=jobs_by_task, text="\n".join(lines))

    def cancel(self, job_ids):
        arrays = sorted({j.split("_")[0] for j in job_ids})
        if not arrays:
            return "no SLURM jobs recorded"
        run(["scancel", *arrays], timeout=60)
        return f"cancelled SLURM job(s) {', '.join(arrays)}"

    def status(self, job_ids):
        return scheduler_states(job_ids)


def submit_next_rung(store_path: str, decision: dict) -> None:
    """Submit the tasks a rung decision promoted, as one array (from a compute node, or anywhere), and
    record beside the decision what was submitted or why not. Never raises."""
    from ...jobs.halving import decision_path, write_once
    from ..halving import runnable
    from ..store import RunStore

    record = decision_path(store_path, decision["rung"]).with_suffix(".submitted.json")
    try:
        store = RunStore.open(store_path, mode="r+")
        promoted = set(decision["promoted"])
        ids = [tid for tid in runnable(store) if tid in promoted]
        with _outside_the_job():
            result = SlurmBackend().submit(store, ids) if ids else None
        note = {"tasks": ids, "jobs": {t: j["job_id"] for t, j in (result.jobs if result else {}).items()}}
    except Exception as exc:  # sbatch refused, or is missing on this node: resume submits them
        note = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
    try:
        write_once(record, {"rung": decision["rung"], "time": time.time(), **note})
    except OSError:
        pass


CHAIN = "chain"  # under the store's slurm/: the tasks left for later by a submit that hit a queue limit
CHAIN_WAIT_SECONDS = 120  # how long the last element waits for room in the queue


class QueueFull(BackendError):
    """A queue limit leaves no room for one more job: nothing was submitted."""


def _write_chain(store_path, submitted: list[str], later: list[str], limit: str) -> Path:
    import json
    import uuid

    folder = Path(store_path) / "slurm" / CHAIN
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"after": submitted, "next": later, "limit": limit, "time": time.time()}))
    os.replace(tmp, path)
    return path


def continue_chain(store_path: str, task_ids: list[str]) -> None:
    """From an element whose tasks have ended: when every task of its submission has ended, submit the
    tasks that submission left for later (as far as the queue's limit allows now; the rest again for
    later), once, whoever comes first, and record what was submitted or why not beside the record.
    Never raises."""
    import json

    from ...jobs.halving import write_once
    from ...jobs.pack import unfinished

    try:
        folder = Path(store_path) / "slurm" / CHAIN
        records = sorted(p for p in folder.glob("*.json") if not p.name.endswith(".submitted.json")) \
            if folder.is_dir() else []
        mine = set(task_ids)
        for path in records:
            record = json.loads(path.read_text())
            done = path.with_name(path.stem + ".submitted.json")
            if not mine & set(record["after"]) or done.exists() or _running(store_path, record["after"]):
                continue
            if not write_once(done.with_suffix(".claim"), {"time": time.time(), "by": os.environ.get("SLURM_JOB_ID")}):
                continue  # another element took it
            from ..store import RunStore

            try:
                ids = unfinished(store_path, record["next"])
                result, wait_until = None, time.time() + CHAIN_WAIT_SECONDS
                while ids:  # the elements that ended just before this one may still be in the queue for a moment
                    try:
                        with _outside_the_job():
                            result = SlurmBackend().submit(RunStore.open(store_path, mode="r+"), ids)
                        break
                    except QueueFull:
                        if time.time() > wait_until:
                            raise
                        time.sleep(2)
                note = {"tasks": ids, "text": result.text if result else "nothing left to run"}
            except Exception as exc:  # sbatch refused, the queue is full: resume submits them
                note = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
            write_once(done, {"time": time.time(), **note})
    except (OSError, ValueError, KeyError):
        pass


def _running(store_path, task_ids: list[str]) -> bool:
    """Whether any of these tasks has training left in its own submission: not ended nor parked."""
    from ...jobs.pack import ENDED
    from ...jobs.status import TaskStatus
    from ...jobs.store import stored_status

    return any(TaskStatus.from_attrs(stored_status(store_path, tid)).state not in (*ENDED, "parked")
               for tid in task_ids)


@contextlib.contextmanager
def _outside_the_job():
    """sbatch from inside a job: without the job's SLURM_* variables, which the new job would inherit
    (a one-task job is no array, so it would keep this element's SLURM_ARRAY_* and run as it)."""
    saved = {k: v for k, v in os.environ.items() if k.startswith(("SLURM_", "SBATCH_")) and k != "SLURM_CONF"}
    for k in saved:
        del os.environ[k]
    try:
        yield
    finally:
        os.environ.update(saved)


def _submit_array(ex: submitit.SlurmExecutor, store_path: str, chunk: list, packed: bool = False) -> list:
    """One array through submitit (which runs sbatch and prints its stderr: the error shows it instead);
    ``chunk``: task ids, or with ``packed`` the task ids of each element."""
    with contextlib.redirect_stderr(io.StringIO()):
        return ex.map_array(PackRunner() if packed else TaskRunner(), [store_path] * len(chunk), chunk)


def _submission_error(exc: Exception, store_path: Path, submitted: int, total: int) -> Exception:
    """The error to show for an exception from ``map_array``: sbatch's command, exit code and stderr."""
    done = (f"{submitted} of {total} tasks were submitted before it and are recorded in the store"
            if submitted else "no task was submitted")
    cause = exc.__cause__
    if isinstance(exc, FileNotFoundError) and exc.filename == "sbatch":
        error = not_found("sbatch")
    elif isinstance(cause, subprocess.CalledProcessError):  # submitit's FailedJobError, from sbatch's exit
        error = failed(cause.cmd, cause.returncode, (cause.output or "") + "\n" + (cause.stderr or ""))
    elif is_store_full_or_readonly(exc):
        return StoreWriteError(f"{store_path}: cannot write the SLURM job files: {exc}; {done}")
    else:
        error = BackendError(f"sbatch failed: {type(exc).__name__}: {exc}")
    return BackendError(f"{error}\n{done}")


# ------------------------------------------------------------------ status


def _have(cmd: str) -> bool:
    import shutil

    return shutil.which(cmd) is not None


def scheduler_states(job_ids: list[str], timeout: float = 15.0) -> dict[str, str]:
    """The scheduler's word on each job id: squeue for live jobs, sacct (if it answers) for ended ones.

    Never waits on sacct for long and never fails: a cluster without accounting gives
    only the squeue states, and jobs squeue no longer lists are left out.
    """
    if not job_ids or not _have("squeue"):
        return {}
    states: dict[str, str] = {}
    arrays = sorted({j.split("_")[0] for j in job_ids})
    try:
        r = run(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(arrays)], timeout=timeout, check=False)
        if r.returncode == 0:
            for line in r.stdout.splitlines():
                parts = line.split("|")
                if len(parts) >= 2:
                    states[parts[0]] = parts[1].split()[0]
    except BackendError:
        pass
    try:
        r = run(["squeue", "-h", "-r", "-o", "%i|%T", "-j", ",".join(arrays)], timeout=timeout, check=False)
    except BackendError:
        return {j: states[j] for j in job_ids if j in states}
    if r.returncode == 0:
        for line in r.stdout.splitlines():
            jid, _, state = line.partition("|")
            states[jid.strip()] = state.strip()
    return {j: states[j] for j in job_ids if j in states}
