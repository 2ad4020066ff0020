"""The built wheel installs and imports as the one `snnbatch` namespace."""
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_builds_installs_and_imports(tmp_path):
    out = tmp_path / "dist"
    r = subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(out), str(ROOT)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    wheel = next(out.glob("snnbatch-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for expected in ("snnbatch/__init__.py", "snnbatch/kernels/lif.py", "snnbatch/jobs/runner.py",
                     "snnbatch/orchestrator/cli/__init__.py", "snnbatch/orchestrator/backends/dask.py"):
        assert expected in names
    assert not any(n.startswith(("snnbatch/tests/", "snnbatch/benchmarks/", "tests/")) for n in names)
    target = tmp_path / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), str(wheel)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    code = (
        "import snnbatch, snnbatch.kernels.lif, snnbatch.jobs.runner, snnbatch.orchestrator.cli;"
        "print(snnbatch.__file__)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                       env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().startswith(str(target)), r.stdout
