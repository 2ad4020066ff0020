"""The README's plugin example runs as printed: plan, submit, status, and bit-identical resume."""
import json
import re
import subprocess
import sys
from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
CLI = [sys.executable, "-m", "snnbatch.orchestrator.cli"]


def example(name: str) -> str:
    match = re.search(rf"<!-- example: {re.escape(name)} -->\n```\w+\n(.*?)```", README, re.S)
    assert match, f"the README has no example {name}"
    return match.group(1)


def test_the_readme_plugin_example_trains_and_resumes_bit_for_bit(tmp_path, monkeypatch):
    (tmp_path / "reservoir.py").write_text(example("reservoir.py"))
    (tmp_path / "reservoir.yaml").write_text(example("reservoir.yaml"))
    run = subprocess.run(CLI + ["submit", "reservoir.yaml", "--backend", "local", "--no-progress"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"plugin: algorithm 'reservoir' from file {(tmp_path / 'reservoir.py').resolve()}" in run.stdout
    status = subprocess.run(CLI + ["status", "runs/reservoir", "--json"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    rows = json.loads(status.stdout)["tasks"]
    assert len(rows) == 4 and {r["state"] for r in rows} == {"done"}
    from snnbatch import open_run

    table = open_run(tmp_path / "runs/reservoir").to_pandas()
    assert table["test_accuracy"].max() > 0.8  # well above chance (1/3)
    assert (table["rate_hz"] > 0).all()

    from snnbatch.testing import check_trainer

    monkeypatch.chdir(tmp_path)
    result = check_trainer("reservoir.yaml", workdir=tmp_path / "check")
    assert result.iterations == 90 and len(result.kills) == 2
