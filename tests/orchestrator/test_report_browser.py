"""The HTML report as a browser shows it: rendered by headless Chromium (Debian package ``chromium``,
which ``make system-deps`` and CI install), the screenshot checked for the page's figures."""
from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from snnbatch.orchestrator.cli import main

SPEC = """\
name: browser-report
dataset: {n_train: 128, n_test: 32, n_valid: 32}
model: {n_hidden: 8}
training: {epochs: 2, batch_size: 32, validate_every: 2}
sweep:
  grid: {lr: [1.0e-3, 3.0e-2], n_hidden: [8, 16]}
"""


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("the report's browser test needs Chromium: install the Debian package 'chromium' "
                    "(make system-deps does, as root)")
    return found


def screenshot(page, png, tmp_path, width=1400, height=3200) -> Image.Image:
    subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--window-size={width},{height}",
                    f"--screenshot={png}", page.as_uri()], check=True, timeout=120, capture_output=True)
    return Image.open(png).convert("RGB")


def test_report_renders_in_chromium(tmp_path):
    (tmp_path / "spec.yaml").write_text(SPEC)
    store, out = tmp_path / "store", tmp_path / "report"
    result = CliRunner().invoke(main, ["submit", str(tmp_path / "spec.yaml"), "--store", str(store),
                                       "--backend", "inline", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert CliRunner().invoke(main, ["report", str(store), "--out", str(out)]).exit_code == 0
    shot = screenshot(out / "report.html", tmp_path / "page.png", tmp_path)
    assert shot.size == (1400, 3200)
    pixels = np.asarray(shot, dtype=int)
    rows = np.flatnonzero((np.abs(pixels - 255).sum(axis=2) > 30).any(axis=1))
    assert rows.size and rows.max() > 1500, "the page ends too early: figures missing"
    # the figures are drawn: the heatmap's viridis (yellow-green) and the curves' blues and oranges are on screen
    r, g, b = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    assert ((r > 180) & (g > 180) & (b < 80)).sum() > 2000, "no heatmap colours on the page"
    assert ((b > 120) & (r < 80) & (g < 140)).sum() > 2000, "no dark-blue curves on the page"
    # the page fits the window: nothing wider than it (no horizontal scrolling of the figures)
    assert (np.abs(pixels[:, -20:] - 255).sum(axis=2) < 30).mean() > 0.99
