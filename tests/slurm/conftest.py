"""A real single-node SLURM for the tests in this folder (started by start.sh, stopped at the end).

These tests are marked ``slurm``; ``make test`` runs them, ``make test-fast`` skips them. They need
root and the Debian packages slurm-wlm, munge, slurmdbd and mariadb-server.
"""
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).parent


class Cluster:
    def __init__(self):
        self.options = None

    def start(self, accounting="on", max_array_size=1001, max_submit_jobs=0):
        options = (accounting, max_array_size, max_submit_jobs)
        if options == self.options:
            return
        r = subprocess.run([str(HERE / "start.sh"), "--accounting", accounting, "--max-array-size",
                            str(max_array_size), "--max-submit-jobs", str(max_submit_jobs)],
                           capture_output=True, text=True, timeout=180)
        assert r.returncode == 0, f"SLURM did not start:\n{r.stdout}\n{r.stderr}"
        self.options = options

    def stop(self):
        subprocess.run([str(HERE / "stop.sh")], capture_output=True, timeout=120)
        self.options = None


@pytest.fixture(scope="session")
def cluster():
    c = Cluster()
    yield c
    c.stop()


def pytest_collection_modifyitems(items):
    for item in items:
        if HERE in Path(item.fspath).parents:
            item.add_marker(pytest.mark.slurm)
