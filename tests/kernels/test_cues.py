"""The delayed match-to-sample data of kernels/cues.py: layout, labels, rates, and bits from the seed."""
import numpy as np
import pytest

from snnbatch.kernels import cues


def _data(seed=0, **kw):
    cfg = cues.CueConfig(**{"n_train": 200, "n_test": 60, **kw})
    return cfg, cues.make_dataset(cfg, np.random.default_rng(seed))


def test_the_same_seed_gives_the_same_bits_and_another_seed_other_samples():
    _, a = _data(3)
    _, b = _data(3)
    _, c = _data(4)
    for x, y in ((a.train_events, b.train_events), (a.test_events, b.test_events)):
        assert np.array_equal(x.ptr, y.ptr) and np.array_equal(x.units, y.units)
    assert np.array_equal(a.train_labels, b.train_labels) and np.array_equal(a.test_labels, b.test_labels)
    assert not np.array_equal(a.train_labels, c.train_labels)


@pytest.mark.parametrize("n_patterns, delay", [(2, 0), (2, 30), (4, 7)])
def test_cue_then_delay_then_probe_on_their_own_units_and_the_label_says_whether_they_match(n_patterns, delay):
    cfg, data = _data(1, n_patterns=n_patterns, delay_steps=delay, units_per_pattern=4, n_noise=3, cue_steps=6,
                      probe_steps=5, spike_prob=0.5, noise_prob=0.05)
    P, upp = n_patterns, 4
    assert (data.n_inputs, data.n_classes, data.n_steps) == (2 * P * upp + 3, 2, 6 + delay + 5)
    for events, labels in ((data.train_events, data.train_labels), (data.test_events, data.test_labels)):
        assert labels.dtype == np.int64 and labels.sum() == len(labels) // 2  # exactly half match
        dense = events.to_dense(data.n_inputs)
        cue_part, delay_part, probe_part = dense[:, :6], dense[:, 6:6 + delay], dense[:, 6 + delay:]
        # the cue is on cue units only, the probe on probe units only, nothing but noise in the delay
        assert not cue_part[:, :, P * upp:2 * P * upp].any() and not probe_part[:, :, :P * upp].any()
        assert not delay_part[:, :, :2 * P * upp].any()
        cue_groups = cue_part[:, :, :P * upp].reshape(len(labels), 6, P, upp).sum(axis=(1, 3))
        probe_groups = probe_part[:, :, P * upp:2 * P * upp].reshape(len(labels), 5, P, upp).sum(axis=(1, 3))
        assert ((cue_groups > 0).sum(axis=1) <= 1).all() and ((probe_groups > 0).sum(axis=1) <= 1).all()
        seen = (cue_groups > 0).any(axis=1) & (probe_groups > 0).any(axis=1)
        match = cue_groups.argmax(axis=1) == probe_groups.argmax(axis=1)
        assert seen.mean() > 0.95
        assert np.array_equal(match[seen], labels[seen] == 1)
        assert dense[:, :, 2 * P * upp:].any()  # background noise


def test_neither_cue_nor_probe_alone_tells_the_label():
    cfg = cues.CueConfig(n_patterns=3)
    cue, probe, label = cues.draw_trials(cfg, 60000, np.random.default_rng(0))
    for shown in (cue, probe):
        for k in range(3):
            assert abs(label[shown == k].mean() - 0.5) < 0.02
    assert (probe[label == 1] == cue[label == 1]).all() and (probe[label == 0] != cue[label == 0]).all()


def test_spike_rates():
    cfg, data = _data(2, n_train=400, spike_prob=0.2, noise_prob=0.02)
    dense = data.train_events.to_dense(data.n_inputs)
    cue = dense[:, :cfg.cue_steps, :2 * cfg.units_per_pattern].sum(axis=(1, 2)) / (cfg.cue_steps * cfg.units_per_pattern)
    assert abs(cue.mean() - 0.2) < 0.01 and cue.std() < 0.05
    assert abs(dense[:, :, 4 * cfg.units_per_pattern:].mean() - 0.02) < 0.003
