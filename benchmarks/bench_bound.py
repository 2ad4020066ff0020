"""How close the LIF kernel gets to its bound: the dense per-neuron state updates.

Input current and the input-weight gradient go per input event, hidden spikes
per spike; what every exact implementation of kernels/lif.py's numerics must do
densely, for every neuron and step, is the state update: forward
U[n+1] = βU[n] + I[n+1] − ϑS[n], the spike test and the decay of I; backward the
adjoints g_I, g_U (with the surrogate's division) and dL/dS = W_out·g_Io (+ W_rec·g_I
for the recurrent network, an H×H product per step), in float32 as in the kernel. This module times a microkernel doing only that, over
exactly the steps the kernel runs (all T forward; backward from the last readout
maximum to the first input event of each sample), and the kernel on the same
batches, one thread, CPU time. The microkernel is the kernel's own compiled
per-sample code run on a network that never spikes and gets a single input
event, so it measures the same dense loops without any of the sparse work.
"""
from __future__ import annotations

import time

NAME = "bound"
TITLE = "LIF kernel vs its state-update-only bound (1 thread, CPU time per 256-sample batch)"


def _microkernel():
    """The kernel's own per-sample forward and backward on a network that never spikes and gets one
    input event: all of their dense state-update work, none of the sparse work."""
    import numba
    import numpy as np

    from snnbatch.kernels import lif

    @numba.njit(nogil=True, error_model="numpy")
    def state_updates(T, H, steps_bwd, w_in, w_rec, w_out, w_recT, w_outT, alpha, beta, theta, scale, one, recurrent):
        O = w_out.shape[1]
        ptr = np.ones((1, T + 1), np.int64)  # one event (unit 0) at step 0, then none
        ptr[0, 0] = 0
        units = np.zeros(1, np.int32)
        U = np.empty((T + 1, H), w_in.dtype)
        Uo = np.empty((T, O), w_in.dtype)
        s_row = np.empty(H, w_in.dtype)
        flags = np.zeros(8 * ((H + 7) // 8), np.uint8)
        i_syn = np.empty(H, w_in.dtype)
        io = np.empty(O, w_in.dtype)
        uo = np.empty(O, w_in.dtype)
        spk_idx = np.empty(T * H + H, np.int32)
        spk_val = np.empty(T * H + H, w_in.dtype)
        spk_ptr = np.empty(T + 1, np.int64)
        g_u = np.empty(H, w_in.dtype)
        g_i = np.empty(H, w_in.dtype)
        g_s = np.empty(H, w_in.dtype)
        acc = np.empty(H, w_in.dtype)
        g_uo = np.empty(O, w_in.dtype)
        g_io = np.empty(O, w_in.dtype)
        g_max = np.full(O, 1e-3, w_in.dtype)
        t_max = np.empty(O, np.int64)
        gw_in = np.zeros_like(w_in)
        gw_rec = np.zeros_like(w_rec)
        gw_out = np.zeros_like(w_out)
        for s in range(steps_bwd.shape[0]):
            lif._sample_forward(w_in, w_rec, w_out, ptr, units, 0, alpha, beta, theta, scale, one, recurrent, False,
                                U, s_row, flags, i_syn, io, uo, spk_idx, spk_val, spk_ptr, Uo)
            if steps_bwd[s] > 0:
                t_max[:] = steps_bwd[s] - 1
                lif._sample_backward(w_recT, w_outT, ptr, units, 0, alpha, beta, theta, scale, one, recurrent, True,
                                     U, spk_idx, spk_val, spk_ptr, g_max, t_max, gw_in, gw_rec, gw_out,
                                     g_u, g_i, g_s, acc, g_uo, g_io)
        return gw_in[0, 0]

    return state_updates


def bound_task(recurrent: bool, n_batches: int, repeats: int, train_epochs: int = 1) -> dict:
    """Train ``train_epochs`` epochs (realistic rates), then time kernel and microkernel on the same batches."""
    import numba
    import numpy as np

    from snnbatch.kernels import lif, optim

    from .bench_lif import BATCH, LR, N_TRAIN, _batches, _data
    from .common import median

    numba.set_num_threads(1)
    data = _data()
    cfg = lif.LIFConfig(recurrent=recurrent)
    params = lif.init_params(cfg, np.random.default_rng(1))
    state = optim.adam_init(params)
    for e in range(train_epochs):
        for idx in _batches(N_TRAIN, BATCH, e):
            _, _, grads = lif.loss_acc_grad(params, data.train_events, data.train_labels, cfg, idx)
            optim.adam_step(params, grads, state, LR)
    batches = _batches(N_TRAIN, BATCH, 99)[:n_batches]
    # the backward steps the kernel runs per sample: last readout maximum down to the first input event
    steps = []
    for idx in batches:
        tr = lif.forward(params, data.train_events, cfg, idx)
        last = tr.readout.argmax(axis=1).max(axis=1)
        counts = np.diff(data.train_events.ptr[idx], axis=1)
        first = np.array([np.flatnonzero(c)[0] if c.any() else 0 for c in counts])
        steps.append((last - np.minimum(first, last) + 1).astype(np.int64))
    w_rec = params.get("w_rec", np.zeros((cfg.n_hidden, cfg.n_hidden), np.float32))
    w_recT, w_outT = np.ascontiguousarray(w_rec.T), np.ascontiguousarray(params["w_out"].T)
    micro = _microkernel()
    args = (data.n_steps, cfg.n_hidden)
    weights = (params["w_in"], w_rec, params["w_out"], w_recT, w_outT)
    alpha, beta, _, scale, one = lif._constants(cfg, np.float32)
    consts = (alpha, beta, np.float32(1e30), scale, one, recurrent)  # a threshold never reached: no spikes
    micro(*args, steps[0][:2], *weights, *consts)  # compile

    def timed(fn):
        ts = []
        for _ in range(repeats):
            t0 = time.process_time()
            for b, idx in enumerate(batches):
                fn(b, idx)
            ts.append((time.process_time() - t0) / len(batches))
        return median(ts)

    ev, lab = data.train_events, data.train_labels
    zeros = [np.zeros_like(st) for st in steps]  # forward only
    lif.loss_acc_grad(params, ev, lab, cfg, batches[0])
    res = {
        "kernel_grad": timed(lambda b, idx: lif.loss_acc_grad(params, ev, lab, cfg, idx)),
        "kernel_forward": timed(lambda b, idx: lif.evaluate(params, ev, lab, cfg, idx)),
        "bound": timed(lambda b, idx: micro(*args, steps[b], *weights, *consts)),
        "bound_forward": timed(lambda b, idx: micro(*args, zeros[b], *weights, *consts)),
        "backward_steps_mean": float(np.mean(np.concatenate(steps))),
        "hidden_rate": float(lif.forward(params, ev, cfg, batches[0]).spikes.mean()),
    }
    return res


def run(mode: str, log) -> dict:
    from .common import subprocess_task

    out = {}
    for recurrent in (False, True):
        net = "recurrent" if recurrent else "feed-forward"
        log(f"bound {net}")
        r = subprocess_task("benchmarks.bench_bound:bound_task",
                            dict(recurrent=recurrent, n_batches=4 if mode == "full" else 2,
                                 repeats=7 if mode == "full" else 5), threads=1)
        r.pop("process_seconds", None)
        out[net] = r
    return {"networks": out}


def tables(result):
    from rich.table import Table

    t = Table(title=TITLE, title_justify="left")
    for col in ("network", "kernel fwd+bwd ms", "bound ms", "kernel / bound", "kernel fwd ms", "bound fwd ms",
                "fwd kernel / bound", "mean backward steps", "hidden rate"):
        t.add_column(col, justify="left" if col == "network" else "right")
    for net, r in result["networks"].items():
        t.add_row(net, f"{r['kernel_grad'] * 1e3:.1f}", f"{r['bound'] * 1e3:.1f}", f"{r['kernel_grad'] / r['bound']:.2f}",
                  f"{r['kernel_forward'] * 1e3:.1f}", f"{r['bound_forward'] * 1e3:.1f}",
                  f"{r['kernel_forward'] / r['bound_forward']:.2f}", f"{r['backward_steps_mean']:.0f} / 100",
                  f"{r['hidden_rate']:.3f}")
    return [t]
