"""Readouts of the output voltages and their cross-entropy losses, for the BPTT networks of _network.py.

A network's readout voltages ``Uo[n+1]`` (n = 0 .. T-1, ``Uo[n]`` below for the
array index n) become one cross-entropy loss per sample. Each readout gives the
loss, whether the sample is classified correctly, and the loss's gradient with
respect to every ``Uo[n]`` (``g_step``), which is all the backward pass needs:

* ``max`` (the default; seed 004): logits ``m_o = max_n Uo_o[n]``, the loss sees each
  output only at its maximum;
* ``mean``: ``m_o = (1/T) Σ_n Uo_o[n]``;
* ``last``: ``m_o = Uo_o[T-1]``, the voltage at the end of the sample;
* ``per_step``: the mean over steps of the cross-entropy of ``softmax(Uo[n])``; a sample is
  classified by ``argmax_o Σ_n log softmax(Uo[n])_o`` (as e-prop's loss, kernels/eprop.py);
* ``count``: ``m_o = Σ_n (W_out·S[n])_o``, the hidden spike counts weighted by ``w_out``:
  the readout's input summed over time, without its two leaky filters. It is computed
  from the voltages by undoing the filters, ``Io[n] = Uo[n] − β Uo[n−1]``,
  ``m = Io[T−1] + (1−α) Σ_{n<T−1} Io[n]``, and differentiated as written;
* ``mse``: regression, not classification: the mean over steps and outputs of
  ``(Uo_o[n] − y_o[n])²`` for a target trajectory ``y`` (steps × outputs) per sample; no sample
  counts as correct.

The loss of a batch is the mean of the samples' losses, so each ``g_step`` is divided by
the batch size. Everything here is compiled (called from the network's block loop) and
adds in a fixed order, so results do not depend on the number of threads.
"""
from __future__ import annotations

import math

import numpy as np

from ._jit import njit

READOUTS = ("max", "mean", "last", "per_step", "count", "mse")
MAX, MEAN, LAST, PER_STEP, COUNT, MSE = range(len(READOUTS))

jit = njit(nogil=True, fastmath=False, error_model="numpy")


def code(cfg) -> int:
    """The readout of a kernel config (``cfg.readout``, ``max`` for a config without one) as its number."""
    name = getattr(cfg, "readout", "max")
    if name not in READOUTS:
        raise ValueError(f"unknown readout {name!r} (choose from: {', '.join(READOUTS)})")
    return READOUTS.index(name)


def labels_and_targets(labels, index, cfg, dtype, n_steps: int):
    """``(labels, targets)`` for the batch loop: int64 labels of the samples ``index`` and a (1, 1, 1) dummy,
    or, for ``mse``, zeros and the target trajectories (batch, steps, outputs) in ``dtype``.

    ``labels`` (and, for ``mse``, the targets given in its place) are given for all samples or for those
    of ``index``.
    """
    if code(cfg) != MSE:
        labels = np.asarray(labels, np.int64)
        return (labels[index] if labels.shape[0] != index.shape[0] else labels), np.zeros((1, 1, 1), dtype)
    targets = np.asarray(labels)
    if targets.ndim != 3 or targets.shape[1:] != (n_steps, cfg.n_outputs):
        raise ValueError(f"readout mse needs target trajectories (samples, {n_steps} steps, {cfg.n_outputs} "
                         f"outputs), got an array of shape {targets.shape}")
    targets = targets[index] if targets.shape[0] != index.shape[0] else targets
    return np.zeros(index.shape[0], np.int64), np.ascontiguousarray(targets, dtype=dtype)


def _softmax_xent(m, label, g_out):
    """Cross-entropy of softmax(m) at ``label``; writes dL/dm to ``g_out``; returns (loss, correct)."""
    O = m.shape[0]
    mx = m[0]
    arg = 0
    for o in range(1, O):
        if m[o] > mx:
            mx = m[o]
            arg = o
    z = 0.0
    for o in range(O):
        z += math.exp(m[o] - mx)
    for o in range(O):
        g_out[o] = math.exp(m[o] - mx) / z
    g_out[label] -= 1.0
    loss = -(m[label] - mx - math.log(z))
    return loss, 1 if arg == label else 0


_softmax_xent_jit = jit(_softmax_xent)


def _sample_loss_py(kind, Uo, label, target, alpha, beta, B, with_grad, m, g, t_max, g_step):
    """(loss, correct, last) of one sample; with ``with_grad``, ``g_step[n, o]`` = dL/dUo_o[n] / B for n <= last.

    ``label``: the class; ``target`` (T, O): the trajectory of ``mse`` (ignored by the others).

    ``g_step`` (T, O) must be zero on entry and is left for :func:`clear` to zero again; ``m``, ``g`` (O,)
    in the voltages' dtype and ``t_max`` (O,) int64 are scratch. ``alpha``, ``beta``: the readout's
    filters, in the voltages' dtype (used by ``count``).
    """
    T, O = Uo.shape
    if kind == MSE:
        loss = 0.0
        for n in range(T):
            for o in range(O):
                d = Uo[n, o] - target[n, o]
                loss += d * d
                if with_grad:
                    g_step[n, o] = 2.0 * d / (T * O * B)
        return loss / (T * O), 0, T - 1
    if kind == PER_STEP:
        loss = 0.0
        for o in range(O):
            m[o] = 0.0  # Σ_n log softmax(Uo[n])_o, for the prediction
        for n in range(T):
            step_loss, _ = _softmax_xent_jit(Uo[n], label, g)
            loss += step_loss
            mx = Uo[n, 0]
            for o in range(1, O):
                mx = max(mx, Uo[n, o])
            z = 0.0
            for o in range(O):
                z += math.exp(Uo[n, o] - mx)
            lz = math.log(z)
            for o in range(O):
                m[o] += Uo[n, o] - mx - lz
            if with_grad:
                for o in range(O):
                    g_step[n, o] = g[o] / (T * B)
        arg = 0
        for o in range(1, O):
            if m[o] > m[arg]:
                arg = o
        return loss / T, 1 if arg == label else 0, T - 1
    if kind == MAX:
        for o in range(O):
            best = Uo[0, o]
            tb = 0
            for n in range(1, T):
                if Uo[n, o] > best:
                    best = Uo[n, o]
                    tb = n
            m[o] = best
            t_max[o] = tb
    elif kind == MEAN:
        for o in range(O):
            s = 0.0
            for n in range(T):
                s += Uo[n, o]
            m[o] = s / T
    elif kind == LAST:
        for o in range(O):
            m[o] = Uo[T - 1, o]
    else:  # COUNT
        for o in range(O):
            s = 0.0
            prev = 0.0
            for n in range(T):
                io = Uo[n, o] - beta * prev  # Io[n]
                prev = Uo[n, o]
                s += io if n == T - 1 else (1.0 - alpha) * io
            m[o] = s
    loss, ok = _softmax_xent_jit(m, label, g)
    last = T - 1
    if with_grad:
        if kind == MAX:
            # the loss sees Uo_o only at its maximum, step t_max[o]
            last = t_max[0]
            for o in range(O):
                g[o] /= B
                last = max(last, t_max[o])
                g_step[t_max[o], o] = g[o]  # g_step is zero elsewhere
        elif kind == MEAN:
            for o in range(O):
                go = g[o] / (T * B)
                for n in range(T):
                    g_step[n, o] = go
        elif kind == LAST:
            for o in range(O):
                g_step[T - 1, o] = g[o] / B
        else:  # COUNT: dm/dUo[n] = c[n] − β c[n+1], c[T−1] = 1, c[n] = 1 − α before, c[T] = 0
            for o in range(O):
                go = g[o] / B
                for n in range(T):
                    c = 1.0 if n == T - 1 else 1.0 - alpha
                    c_next = 0.0 if n == T - 1 else (1.0 if n + 1 == T - 1 else 1.0 - alpha)
                    g_step[n, o] = go * (c - beta * c_next)
    elif kind == MAX:
        last = 0
        for o in range(O):
            last = max(last, t_max[o])
    return loss, ok, last


def _clear_py(kind, t_max, g_step):
    """Zero what :func:`sample_loss` wrote to ``g_step``."""
    T, O = g_step.shape
    if kind == MAX:
        for o in range(O):
            g_step[t_max[o], o] = 0.0
    else:
        for n in range(T):
            for o in range(O):
                g_step[n, o] = 0.0


sample_loss = jit(_sample_loss_py)
clear = jit(_clear_py)
