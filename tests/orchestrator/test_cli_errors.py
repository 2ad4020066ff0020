"""Bad spec files and bad arguments: exit status 2, a message naming the file and the key, no
traceback, and nothing written (no run store, no runs/ directory)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import TINY, tree

# (id, file content, the start of the problem line: the key path and what is wrong)
BAD_FILES = [
    ("wrong-type", "training: {lr: fast}", "training.lr: expected a positive number, got 'fast'"),
    ("wrong-type-in-grid", "sweep: {grid: {lr: [0.1, 0.2, fast]}}",
     "sweep.grid.lr[2]: expected a positive number, got 'fast'"),
    ("wrong-type-bool", "model: {recurrent: maybe}", "model.recurrent: expected true or false, got 'maybe'"),
    ("negative-int", "model: {n_hidden: -3}", "model.n_hidden: expected a positive integer, got -3"),
    ("negative-layer-size", "model: {n_hidden: [16, -3]}", "model.n_hidden: entry 1: expected a positive integer, got -3"),
    ("recurrent-per-layer", "model: {n_hidden: [16, 16], recurrent: [true]}\nsweep: {grid: {recurrent: [[true, false, true]]}}",
     "sweep.grid.recurrent[0]: expected one entry per hidden layer: n_hidden has 2 layers, recurrent has 3 entries"),
    ("eprop-feedback", "model: {n_hidden: [16, 16]}\nlearning: {rule: eprop, feedback: backwards}",
     "learning.feedback: expected one of: 'symmetric', 'random', got 'backwards'"),
    ("negative-seed", "seed: -1", "seed: expected an integer >= 0, got -1"),
    ("negative-in-grid", "sweep: {grid: {lr: [-0.1]}}", "sweep.grid.lr[0]: expected a positive number, got -0.1"),
    ("negative-replicates", "sweep: {seeds: -2}",
     "sweep.seeds: expected a positive number of replicates or a list of seeds, got -2"),
    ("unknown-top-level", "modle: {n_hidden: 3}", "modle: unknown key 'modle' (did you mean 'model'?); valid keys: "
     "checkpoint, dataset, description, learning, model, name, plugins, resources, seed, sweep, training"),
    ("unknown-top-level-no-match", "xyz: 1", "xyz: unknown key 'xyz'; valid keys: checkpoint, dataset, description"),
    ("unknown-section-key", "training: {optimiser: sgd}", "training.optimiser: unknown key 'optimiser' (did you mean "
     "'optimizer'?); valid keys: batch_size, beta1, beta2, clip_grad_norm, early_stopping, epochs, iterations, lr, "
     "lr_schedule, optimizer"),
    ("unknown-resources-key", "resources: {cpu: 4}", "resources.cpu: unknown key 'cpu' (did you mean 'cpus'?)"),
    ("unknown-model-type", "model: {type: hodgkin_huxley}", "model.type: unknown type 'hodgkin_huxley'; choose from: "
     "'alif', 'dendritic', 'force', 'lif'"),
    ("unknown-dataset-type", "dataset: {type: mnist}", "dataset.type: unknown type 'mnist'; choose from: 'randman', "
     "'shd', "),
    ("unknown-axis", "sweep: {grid: {n_hiden: [4, 8]}}", "sweep.grid.n_hiden: unknown parameter 'n_hiden' (did you "
     "mean 'n_hidden'?); sweepable: activity_lower, activity_lower_strength"),
    ("unknown-dotted-axis", "sweep: {zip: {training.lrr: [0.1]}}", "sweep.zip.training.lrr: unknown parameter "
     "'training.lrr' (did you mean 'training.lr'?); sweepable: model.n_hidden"),
    ("unknown-random-axis", "sweep: {random: {samples: 2, params: {weight_scal: {uniform: [1, 2]}}}}",
     "sweep.random.params.weight_scal: unknown parameter 'weight_scal' (did you mean 'weight_scale'?)"),
    ("unknown-sweep-key", "sweep: {grids: {lr: [0.1]}}", "sweep.grids: unknown key 'grids' (did you mean 'grid'?)"),
    ("ambiguous-axis", "sweep: {grid: {seed: [1, 2]}}", "sweep.grid.seed: 'seed' is ambiguous: write dataset.seed"),
    ("zip-lengths", "sweep: {zip: {tau_mem: [0.01, 0.02], tau_syn: [0.005]}}",
     "sweep.zip: all zipped axes need the same number of values (tau_mem has 2, tau_syn has 1)"),
    ("random-two-distributions", "sweep: {random: {samples: 2, params: {lr: {uniform: [0.1, 0.2], "
     "loguniform: [0.1, 1]}}}}", "sweep.random.params.lr: give exactly one of uniform, loguniform, choice, randint"),
    ("random-bounds-reversed", "sweep: {random: {samples: 2, params: {lr: {uniform: [0.3, 0.2]}}}}",
     "sweep.random.params.lr.uniform: expected [low, high] with low < high, got [0.3, 0.2]"),
    ("random-loguniform-zero", "sweep: {random: {samples: 2, params: {lr: {loguniform: [0, 1]}}}}",
     "sweep.random.params.lr.loguniform: bounds must be positive, got [0.0, 1.0]"),
    ("random-bound-out-of-range", "sweep: {random: {samples: 2, params: {beta1: {uniform: [0.5, 1.5]}}}}",
     "sweep.random.params.beta1.uniform[1]: expected a number > 0.0 and < 1.0, got 1.5"),
    ("random-no-samples", "sweep: {random: {samples: 0, params: {lr: {uniform: [0.1, 0.2]}}}}",
     "sweep.random.samples: expected a positive integer, got 0"),
    ("axis-in-grid-and-zip", "sweep: {grid: {lr: [0.1]}, zip: {training.lr: [0.2]}}",
     "sweep.zip.training.lr: sets training.lr already set by sweep.grid.lr"),
    ("lr-schedule-type", "training: {lr_schedule: {type: linear}}",
     "training.lr_schedule.type: expected one of: 'constant', 'step', 'cosine', got 'linear'"),
    ("lr-schedule-bare-name", "training: {lr_schedule: exponential}",
     "training.lr_schedule.type: expected one of: 'constant', 'step', 'cosine', got 'exponential'"),
    ("lr-schedule-step-needs-every", "training: {lr_schedule: {type: step, factor: 0.5}}",
     "training.lr_schedule: 'every' is required by type step"),
    ("lr-schedule-key-of-other-type", "training: {lr_schedule: {type: cosine, every: 10}}",
     "training.lr_schedule: 'every' is a key of type step, not of type cosine"),
    ("lr-schedule-unknown-key", "training: {lr_schedule: {type: cosine, too: 0.1}}",
     "training.lr_schedule.too: unknown key 'too' (did you mean 'to'?)"),
    ("lr-schedule-to-range", "training: {lr_schedule: {type: cosine, to: 1.5}}",
     "training.lr_schedule.to: expected a number >= 0.0 and <= 1.0, got 1.5"),
    ("lr-schedule-warmup-too-long", "training: {iterations: 10, lr_schedule: {warmup: 10}}",
     "training: lr_schedule.warmup (10) must be shorter than iterations (10)"),
    ("weight-decay-negative", "training: {weight_decay: -0.1}",
     "training.weight_decay: expected a number >= 0, got -0.1"),
    ("weight-decay-too-large", "training: {lr: 0.1, weight_decay: 10}", "training: weight_decay × lr must be below 1"),
    ("clip-grad-norm-zero", "training: {clip_grad_norm: 0}", "training.clip_grad_norm: expected a positive number, got 0"),
    ("optimizer-key-without-gradients", "model: {type: force}\ntraining: {clip_grad_norm: 1.0}",
     "training.clip_grad_norm: rule 'rls' of model 'force' takes no gradient steps"),
    ("readout-unknown", "learning: {readout: median}",
     "learning.readout: expected one of: 'max', 'mean', 'last', 'per_step', 'count', 'mse', got 'median'"),
    ("readout-on-eprop", "learning: {rule: eprop, readout: mean}", "learning.readout: unknown key 'readout'"),
    ("epochs-and-iterations", "training: {epochs: 2, iterations: 3}",
     "training: give either 'iterations' or 'epochs', not both"),
    ("bad-time", "resources: {time: 2h}", "resources.time: expected a time limit [D-]HH:MM:SS or MM:SS"),
    ("time-unquoted", "resources: {time: 2:00:00}", "resources.time: expected a time limit [D-]HH:MM:SS or MM:SS, "
     "quoted (e.g. \"01:30:00\", \"2-00:00:00\"), got the number 7200"),
    ("bad-memory", "resources: {memory: 4 gigs}", "resources.memory: expected a memory size such as \"2G\""),
    ("zero-cpus", "resources: {cpus: 0}", "resources.cpus: expected a positive integer, got 0"),
    ("zero-pack", "resources: {pack: 0}", "resources.pack: expected a positive integer, got 0"),
    ("pack-not-a-number", "resources: {pack: many}", "resources.pack: expected a positive integer, got 'many'"),
    ("node-cpus-below-cpus", "resources: {cpus: 4, node_cpus: 2}",
     "resources.node_cpus: 2 cores cannot hold one task of cpus: 4; give at least 4"),
    ("checkpoint-keep", "checkpoint: {keep: 1000}", "checkpoint.keep: expected an integer >= 1 and <= 100, got 1000"),
    ("section-not-a-mapping", "training: 30", "training: expected a mapping of keys, got 30"),
    ("yaml-syntax", "name: x\nmodel:\n  n_hidden: [1, 2\ntraining: {}\n", "line 4, column 9: not valid YAML:"),
    ("yaml-tab", "name: x\nmodel:\n\tn_hidden: 3\n", "line 3, column 1: not valid YAML:"),
    ("top-level-list", "- model\n- training\n", "(top level): expected a mapping of sections, got list"),
    ("top-level-scalar", "just words", "(top level): expected a mapping of sections, got str"),
    ("python-tag", "name: !!python/object/apply:os.getcwd []\n", "line 1, column 7: not valid YAML: could not "
     "determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply:os.getcwd'"),
    ("duplicate-key", "training:\n  lr: 0.1\n  lr: 0.2\n", "line 3: duplicate key 'lr' (first given on line 2)"),
]


def assert_refused(result, path, expected, before, tmp_path):
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit), result.output
    assert f"error: {path}: " in result.stderr, result.stderr
    assert any(line.strip().startswith(expected) for line in result.stderr.splitlines()), result.stderr
    assert tree(tmp_path) == before


@pytest.mark.parametrize("text, expected", [c[1:] for c in BAD_FILES], ids=[c[0] for c in BAD_FILES])
def test_a_bad_spec_is_refused_before_anything_is_written(cli, write_spec, tmp_path, text, expected):
    path = write_spec(text)
    before = tree(tmp_path)
    for args in (["submit", path, "--backend", "inline", "--no-progress"],
                 ["submit", path, "--store", tmp_path / "store", "--backend", "inline"],
                 ["plan", path], ["plan", path, "--json"]):
        result = cli(*args)
        assert_refused(result, path, expected, before, tmp_path)
        assert result.stdout == ""


def test_several_problems_are_reported_at_once(cli, write_spec, tmp_path):
    path = write_spec(TINY.replace("n_hidden: 8", "n_hidden: -8") + """\
resources: {time: 2h, cpu: 2}
sweep:
  grid: {lr: [0.1, fast], n_hiden: [1]}
  zip: {tau_mem: [0.01], tau_syn: [0.1, 0.2]}
""")
    before = tree(tmp_path)
    result = cli("submit", path, "--backend", "inline")
    assert_refused(result, path, "model.n_hidden: expected a positive integer, got -8", before, tmp_path)
    assert f"{path}: 6 problems" in result.stderr
    for expected in ["resources.time: expected a time limit", "resources.cpu: unknown key 'cpu' (did you mean 'cpus'?)",
                     "sweep.grid.lr[1]: expected a positive number, got 'fast'",
                     "sweep.grid.n_hiden: unknown parameter 'n_hiden' (did you mean 'n_hidden'?)",
                     "sweep.zip: all zipped axes need the same number of values"]:
        assert expected in result.stderr, (expected, result.stderr)


def test_a_file_that_is_not_utf8(cli, write_spec, tmp_path):
    path = write_spec(b"name: x\ndescription: caf\xe9\n")
    before = tree(tmp_path)
    for args in (["submit", path, "--backend", "inline"], ["plan", path]):
        assert_refused(cli(*args), path, "line 2: not UTF-8 text (byte 0xe9); save the file as UTF-8", before,
                       tmp_path)


def test_a_spec_file_that_does_not_exist(cli, tmp_path):
    path = tmp_path / "nowhere" / "spec.yaml"
    for args in (["submit", path, "--backend", "inline"], ["plan", path]):
        assert_refused(cli(*args), path, "file not found", [], tmp_path)


def test_a_directory_instead_of_a_spec_file(cli, tmp_path):
    (tmp_path / "specs").mkdir()
    before = tree(tmp_path)
    for args in (["submit", "specs", "--backend", "inline"], ["plan", tmp_path / "specs"]):
        result = cli(*args)
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert "is a directory" in result.stderr and "specs" in result.stderr, result.stderr
        assert tree(tmp_path) == before


# ------------------------------------------------------------------ arguments and stores


@pytest.mark.parametrize("args, words", [
    (["--max-parallel", "0"], ["Invalid value for '--max-parallel'", "0 is not in the range x>=1"]),
    (["--max-parallel", "many"], ["Invalid value for '--max-parallel'", "'many' is not a valid integer"]),
    (["--backend", "kubernetes"], ["Invalid value for '--backend'", "'kubernetes' is not one of", "'inline'",
                                   "'slurm'"]),
])
def test_bad_arguments_are_refused_before_anything_is_written(cli, write_spec, tmp_path, args, words):
    spec = write_spec(TINY)
    before = tree(tmp_path)
    for command in (["submit", spec], ["submit", spec, "--store", "store"], ["resume", tmp_path / "store"]):
        result = cli(*command, *args)
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        for w in words:
            assert w in result.stderr, (w, result.stderr)
        assert tree(tmp_path) == before


@pytest.mark.parametrize("command", [["status"], ["status", "--json"], ["resume", "--backend", "inline"],
                                     ["resume", "--dry-run", "--backend", "slurm"], ["cancel"]])
def test_a_directory_that_is_not_a_store(cli, tmp_path, command):
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "notes.txt").write_text("mine")
    before = tree(tmp_path)
    result = cli(*command, tmp_path / "results")
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert f"error: {tmp_path / 'results'}: not a snnbatch run store" in result.stderr, result.stderr
    assert tree(tmp_path) == before


@pytest.mark.parametrize("command", [["status"], ["resume", "--backend", "inline"], ["cancel"]])
def test_a_store_path_that_does_not_exist(cli, tmp_path, command):
    missing = tmp_path / "runs" / "missing"
    result = cli(*command, missing)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert str(missing) in result.stderr and "not a snnbatch run store" in result.stderr, result.stderr
    assert tree(tmp_path) == []


def test_as_a_real_process(write_spec, tmp_path):
    """Exit status and streams as a shell sees them."""
    path = write_spec(TINY + "sweep: {grid: {lr: [0.1, 0.2, fast]}}\n")
    before = tree(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "snnbatch.orchestrator.cli", "submit", str(path), "--backend",
                           "inline"], capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == f"error: {path}: 1 problem\n  sweep.grid.lr[2]: expected a positive number, got 'fast'\n"
    assert tree(tmp_path) == before


def test_a_sweep_axis_typo_is_reported_beside_a_missing_data_file(cli, write_spec, tmp_path):
    path = write_spec("model: {type: alif}\ndataset: {type: shd, train_path: nothere.h5}\n"
                      "sweep:\n  grid: {adapt_jmp: [0.1, 0.2]}\n")
    before = tree(tmp_path)
    result = cli("submit", path, "--backend", "inline")
    assert_refused(result, path, "dataset.train_path: file not found: nothere.h5", before, tmp_path)
    assert f"{path}: 2 problems" in result.stderr
    assert "sweep.grid.adapt_jmp: unknown parameter 'adapt_jmp' (did you mean 'adapt_jump'?)" in result.stderr
