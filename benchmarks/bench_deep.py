"""BPTT of two hidden layers (kernels/deep.py) against a PyTorch network of the same equations, s/epoch.

bench_lif's setting (Randman, 100 inputs, T = 100, batch 256, 2000 samples per epoch, float32,
Adam, 1 thread), with two hidden layers of 128 LIF neurons, feed-forward and both recurrent, and
one layer of 128 for comparison. The reference is bench_lif's ``spytorch-unbind`` written for
layers (layer k takes layer k−1's spikes of the same step, as deep.py's docstring says); each
(implementation, network) runs in a fresh 1-thread subprocess and speed is a ratio of CPU time to
the reference measured in the same run.
"""
from __future__ import annotations

import time

NAME = "deep"
TITLE = "BPTT of two hidden layers (deep.py) vs a PyTorch network of the same equations (Randman 100-128-128-2)"

NETWORKS = {  # name: (layer sizes, recurrent)
    "one layer, feed-forward": ((128,), False),
    "two layers, feed-forward": ((128, 128), False),
    "one layer, recurrent": ((128,), True),
    "two layers, recurrent": ((128, 128), True),
}


def _torch_model(cfg, params):
    import torch

    from .peers import spike_fn

    class Layers(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.ParameterDict({k: torch.nn.Parameter(torch.tensor(v)) for k, v in params.items()})

        def forward(self, x):  # x: (batch, T, n_inputs) dense spikes -> Uo[n + 1] (batch, T, n_outputs)
            alpha, beta, thr = cfg.alpha, cfg.beta, cfg.threshold
            B, T, _ = x.shape
            L = len(cfg.n_hidden)
            h1 = torch.einsum("abc,cd->abd", x, self.w["w_in"]).unbind(1)
            syn = [torch.zeros((B, H), dtype=x.dtype) for H in cfg.n_hidden]
            mem = [torch.zeros((B, H), dtype=x.dtype) for H in cfg.n_hidden]
            spk_rec = []
            for t in range(T):
                S = [spike_fn(mem[k] - thr) for k in range(L)]  # S_k[t], from U_k[t]
                for k in range(L):
                    h = h1[t] if k == 0 else torch.mm(S[k - 1], self.w[f"w_in{k}"])
                    if cfg.recurrent[k]:
                        h = h + torch.mm(S[k], self.w["w_rec" if k == 0 else f"w_rec{k}"])
                    syn[k] = alpha * syn[k] + h
                    mem[k] = beta * mem[k] + syn[k] - thr * S[k].detach()
                spk_rec.append(S[-1])
            h2 = torch.einsum("abc,cd->abd", torch.stack(spk_rec, dim=1), self.w["w_out"]).unbind(1)
            flt = torch.zeros((B, cfg.n_outputs), dtype=x.dtype)
            uo = torch.zeros((B, cfg.n_outputs), dtype=x.dtype)
            out = []
            for t in range(T):
                flt = alpha * flt + h2[t]
                uo = beta * uo + flt
                out.append(uo)
            return torch.stack(out, dim=1)

    return Layers()


def epoch_task(impl: str, network: str, repeats: int) -> dict:
    """Median CPU and wall seconds per epoch (forward, backward, Adam) of ``impl`` on ``network``, 1 thread."""
    import numpy as np

    from snnbatch.kernels import deep, lif

    from .bench_lif import BATCH, LR, N_INPUTS, N_OUTPUTS, N_TRAIN, _batches, _data

    sizes, recurrent = NETWORKS[network]
    data = _data()
    cfg = deep.DeepLIFConfig(n_inputs=N_INPUTS, n_hidden=sizes, n_outputs=N_OUTPUTS,
                             recurrent=(recurrent,) * len(sizes), recurrent_weight_scale=0.5)
    params = deep.init_params(cfg, np.random.default_rng(1))
    if impl == "kernel":
        import numba

        from snnbatch.kernels import optim

        numba.set_num_threads(1)
        state = optim.adam_init(params)
        one = len(sizes) == 1  # one layer: the trainer's kernel, lif.py
        lcfg = lif.LIFConfig(n_inputs=N_INPUTS, n_hidden=sizes[0], n_outputs=N_OUTPUTS, recurrent=recurrent,
                             recurrent_weight_scale=0.5)
        kernel, kcfg = (lif, lcfg) if one else (deep, cfg)

        def epoch(e, warm_up=False):
            loss = 0.0
            for idx in _batches(N_TRAIN, BATCH, e)[: 1 if warm_up else None]:
                loss, _, grads = kernel.loss_acc_grad(params, data.train_events, data.train_labels, kcfg, idx)
                optim.adam_step(params, grads, state, LR)
            return loss
    else:
        import torch

        from . import peers

        torch.set_num_threads(1)
        model = _torch_model(cfg, params)
        opt = torch.optim.Adam(model.parameters(), lr=LR)
        labels = torch.tensor(data.train_labels)

        def epoch(e, warm_up=False):
            loss = None
            for idx in _batches(N_TRAIN, BATCH, e)[: 1 if warm_up else None]:
                x = peers.dense_inputs(data.train_events.take(idx), N_INPUTS)
                loss = peers.max_readout_loss(model(x), labels[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            return loss.item()

    epoch(0, warm_up=True)
    wall, cpu = [], []
    for e in range(1, repeats + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        epoch(e)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return {"wall": wall, "cpu": cpu}


def check_task() -> dict:
    """float64: the PyTorch network's loss and gradients against deep.py's on 64 samples (largest relative
    difference per network), so the two compute the same thing."""
    import numpy as np
    import torch

    from snnbatch.kernels import deep

    from . import peers
    from .bench_lif import N_INPUTS, N_OUTPUTS, _data

    data = _data()
    idx = np.arange(64)
    out = {}
    for recurrent in (False, True):
        cfg = deep.DeepLIFConfig(n_inputs=N_INPUTS, n_hidden=(128, 128), n_outputs=N_OUTPUTS,
                                 recurrent=(recurrent, recurrent), recurrent_weight_scale=0.5, dtype="float64")
        params = deep.init_params(cfg, np.random.default_rng(1))
        loss, grads = deep.loss_and_grad(params, data.train_events, data.train_labels, cfg, idx)
        model = _torch_model(cfg, params)
        x = peers.dense_inputs(data.train_events.take(idx), N_INPUTS, dtype=torch.float64)
        ref = peers.max_readout_loss(model(x), torch.tensor(data.train_labels[idx]))
        ref.backward()
        out["recurrent" if recurrent else "feed-forward"] = {
            "loss": abs(loss - ref.item()) / abs(ref.item()),
            "grad": max(float(np.abs(grads[k] - model.w[k].grad.numpy()).max() / np.abs(grads[k]).max())
                        for k in grads)}
    return out


def run(mode: str, log) -> dict:
    from .common import median, subprocess_task

    repeats = {"kernel": 5, "torch": 3} if mode == "full" else {"kernel": 3, "torch": 2}
    rows = []
    for network in NETWORKS:
        for impl in ("kernel", "torch"):
            log(f"{impl:6s} {network}")
            r = subprocess_task("benchmarks.bench_deep:epoch_task",
                                {"impl": impl, "network": network, "repeats": repeats[impl]}, threads=1)
            rows.append({"impl": impl, "network": network, "cpu_median": median(r["cpu"]),
                         "wall_median": median(r["wall"]), "cpu": r["cpu"], "wall": r["wall"]})
    log("float64 check: the PyTorch network against deep.py")
    check = subprocess_task("benchmarks.bench_deep:check_task", {}, threads=1)
    check.pop("peak_rss_mib", None)
    check.pop("process_seconds", None)
    for network in NETWORKS:
        k, t = (next(r for r in rows if (r["impl"], r["network"]) == (i, network)) for i in ("kernel", "torch"))
        k["speedup_cpu"] = t["cpu_median"] / k["cpu_median"]
    return {"rows": rows, "repeats": repeats, "check": check}


def tables(result):
    from rich.table import Table

    t = Table(title=TITLE, title_justify="left",
              caption="1 thread, 2000 samples per epoch, batch 256, T = 100, float32, Adam; one layer runs on "
                      "lif.py (the trainer's kernel for one layer), two on deep.py; speed-up: the PyTorch "
                      "network's CPU seconds over the kernel's, in the same run; float64 check of the PyTorch "
                      "network against deep.py (largest relative difference, loss / gradients): "
                      + ", ".join(f"{k} {v['loss']:.0e} / {v['grad']:.0e}" for k, v in result["check"].items()))
    for col in ("network", "impl", "CPU s/epoch", "wall s/epoch", "speed-up"):
        t.add_column(col, justify="left" if col in ("network", "impl") else "right")
    for r in result["rows"]:
        t.add_row(r["network"], "kernel" if r["impl"] == "kernel" else "PyTorch", f"{r['cpu_median']:.3f}",
                  f"{r['wall_median']:.3f}", f"{r['speedup_cpu']:.1f}×" if "speedup_cpu" in r else "")
    return [t]
