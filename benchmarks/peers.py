"""The LIF network of kernels/lif.py written in PyTorch, the way its users would write it.

* ``spytorch``: plain autograd as in Zenke's SpyTorch tutorial: a ``SurrGradSpike``
  autograd.Function, a dense input tensor multiplied by the input weights for all
  steps at once, a Python for-loop over time, the reset detached. Same equations,
  same order of updates as kernels/lif.py (the benchmark checks its gradient
  against the kernel's in float64).
* ``snntorch``: ``snn.Synaptic`` neurons (reset by subtraction, fast-sigmoid
  surrogate of slope 100), a leaky non-spiking readout.
* ``norse``: ``norse.torch.LIF`` / ``LIFRecurrent`` with SuperSpike surrogate
  (alpha 100) and an ``LI`` readout. Norse integrates the continuous equations by
  forward Euler (v += dt/τ_mem (i − v)) and resets to zero, so its weights are
  scaled by τ_mem/dt to drive the neurons as hard as in kernels/lif.py; the
  network differs slightly, the work per step is the same.

Imported only inside benchmark subprocesses: torch is not a runtime dependency.
"""
from __future__ import annotations

import torch


class SurrGradSpike(torch.autograd.Function):
    """Heaviside forward, fast-sigmoid derivative 1 / (scale |x| + 1)^2 backward (SpyTorch)."""

    scale = 100.0

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        out = torch.zeros_like(x)
        out[x > 0] = 1.0
        return out

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output / (SurrGradSpike.scale * torch.abs(x) + 1.0) ** 2


spike_fn = SurrGradSpike.apply


class SpyTorchLIF(torch.nn.Module):
    unbind = False

    def __init__(self, cfg, params: dict):
        super().__init__()
        self.cfg = cfg
        self.w_in = torch.nn.Parameter(torch.tensor(params["w_in"]))
        self.w_out = torch.nn.Parameter(torch.tensor(params["w_out"]))
        self.w_rec = torch.nn.Parameter(torch.tensor(params["w_rec"])) if cfg.recurrent else None

    def forward(self, x):  # x: (batch, T, n_inputs) dense spikes
        cfg = self.cfg
        alpha, beta, thr = cfg.alpha, cfg.beta, cfg.threshold
        B, T, _ = x.shape
        h1 = torch.einsum("abc,cd->abd", x, self.w_in)
        h1 = h1.unbind(1) if self.unbind else [h1[:, t] for t in range(T)]
        syn = torch.zeros((B, cfg.n_hidden), dtype=x.dtype)
        mem = torch.zeros((B, cfg.n_hidden), dtype=x.dtype)
        spk_rec = []
        for t in range(T):
            out = spike_fn(mem - thr)
            rst = out.detach()  # no gradient through the reset
            h = h1[t]
            if self.w_rec is not None:
                h = h + torch.mm(out, self.w_rec)
            syn = alpha * syn + h
            mem = beta * mem + syn - thr * rst
            spk_rec.append(out)
        spk = torch.stack(spk_rec, dim=1)
        h2 = torch.einsum("abc,cd->abd", spk, self.w_out)
        h2 = h2.unbind(1) if self.unbind else [h2[:, t] for t in range(T)]
        flt = torch.zeros((B, cfg.n_outputs), dtype=x.dtype)
        uo = torch.zeros((B, cfg.n_outputs), dtype=x.dtype)
        out_rec = []
        for t in range(T):
            flt = alpha * flt + h2[t]
            uo = beta * uo + flt
            out_rec.append(uo)
        return torch.stack(out_rec, dim=1)  # (batch, T, n_outputs): Uo[n + 1]


class SpyTorchUnbindLIF(SpyTorchLIF):
    """The same, but the per-step slices taken with ``unbind``: the tutorial's ``h1[:, t]`` makes
    autograd scatter each step's gradient into a zero tensor of the whole input (O(T²) work)."""

    unbind = True


class SnnTorchLIF(torch.nn.Module):
    def __init__(self, cfg, params: dict):
        import snntorch as snn
        from snntorch import surrogate

        super().__init__()
        self.cfg = cfg
        grad = surrogate.fast_sigmoid(slope=cfg.surrogate_scale)
        self.fc_in = torch.nn.Linear(cfg.n_inputs, cfg.n_hidden, bias=False)
        self.fc_in.weight.data = torch.tensor(params["w_in"].T.copy())
        self.fc_rec = None
        if cfg.recurrent:
            self.fc_rec = torch.nn.Linear(cfg.n_hidden, cfg.n_hidden, bias=False)
            self.fc_rec.weight.data = torch.tensor(params["w_rec"].T.copy())
        self.fc_out = torch.nn.Linear(cfg.n_hidden, cfg.n_outputs, bias=False)
        self.fc_out.weight.data = torch.tensor(params["w_out"].T.copy())
        self.lif = snn.Synaptic(alpha=cfg.alpha, beta=cfg.beta, threshold=cfg.threshold, spike_grad=grad,
                                reset_mechanism="subtract")
        self.readout = snn.Synaptic(alpha=cfg.alpha, beta=cfg.beta, threshold=1e9, spike_grad=grad,
                                    reset_mechanism="none")

    def forward(self, x):
        B, T, _ = x.shape
        syn, mem = self.lif.reset_mem()
        syn_o, mem_o = self.readout.reset_mem()
        cur = self.fc_in(x)
        spk = torch.zeros((B, self.cfg.n_hidden), dtype=x.dtype)
        out = []
        for t in range(T):
            c = cur[:, t]
            if self.fc_rec is not None:
                c = c + self.fc_rec(spk)
            spk, syn, mem = self.lif(c, syn, mem)
            _, syn_o, mem_o = self.readout(self.fc_out(spk), syn_o, mem_o)
            out.append(mem_o)
        return torch.stack(out, dim=1)


class NorseLIF(torch.nn.Module):
    def __init__(self, cfg, params: dict):
        import norse.torch as norse

        super().__init__()
        self.cfg = cfg
        gain = cfg.tau_mem / cfg.dt  # Euler: the membrane takes dt/τ_mem of the current per step
        params = {k: v * gain for k, v in params.items()}
        p = norse.LIFParameters(tau_syn_inv=torch.as_tensor(1.0 / cfg.tau_syn),
                                tau_mem_inv=torch.as_tensor(1.0 / cfg.tau_mem),
                                v_th=torch.as_tensor(cfg.threshold), method="super",
                                alpha=torch.as_tensor(cfg.surrogate_scale))
        if cfg.recurrent:
            self.lif = norse.LIFRecurrent(cfg.n_inputs, cfg.n_hidden, p=p, dt=cfg.dt, autapses=True,
                                          input_weights=torch.tensor(params["w_in"].T.copy()),
                                          recurrent_weights=torch.tensor(params["w_rec"].T.copy()))
            self.fc_in = None
        else:
            self.fc_in = torch.nn.Linear(cfg.n_inputs, cfg.n_hidden, bias=False)
            self.fc_in.weight.data = torch.tensor(params["w_in"].T.copy())
            self.lif = norse.LIF(p=p, dt=cfg.dt)
        self.fc_out = torch.nn.Linear(cfg.n_hidden, cfg.n_outputs, bias=False)
        self.fc_out.weight.data = torch.tensor(params["w_out"].T.copy())
        self.li = norse.LI(p=norse.LIParameters(tau_syn_inv=torch.as_tensor(1.0 / cfg.tau_syn),
                                                tau_mem_inv=torch.as_tensor(1.0 / cfg.tau_mem)), dt=cfg.dt)

    def forward(self, x):
        x = x.transpose(0, 1)  # Norse is time-major: (T, batch, n)
        if self.fc_in is not None:
            x = self.fc_in(x)
        spk, _ = self.lif(x)
        uo, _ = self.li(self.fc_out(spk))
        return uo.transpose(0, 1)


PEERS = {"spytorch": SpyTorchLIF, "spytorch-unbind": SpyTorchUnbindLIF, "snntorch": SnnTorchLIF,
         "norse": NorseLIF}


def max_readout_loss(uo, y):
    """Cross-entropy of softmax(max over time of the readout), mean over the batch (as kernels/lif.py)."""
    m, _ = torch.max(uo, dim=1)
    return torch.nn.functional.cross_entropy(m, y)


def make_model(name: str, cfg, params: dict):
    return PEERS[name](cfg, params)


def dense_inputs(events, n_inputs: int, dtype=torch.float32):
    """(n_samples, T, n_inputs) 0/1 tensor from compact SpikeEvents (as Randman makes them)."""
    import numpy as np

    n, T = events.n_samples, events.n_steps
    lengths = np.diff(events.ptr[:, :].reshape(-1))[np.arange(n * (T + 1) - 1) % (T + 1) != T]
    cell = np.repeat(np.arange(n * T), lengths)  # (sample, step) of each event, in storage order
    units = events.units[events.ptr[0, 0] : events.ptr[-1, -1]]
    out = np.zeros((n * T, n_inputs), np.float32)
    np.add.at(out, (cell, units), 1.0)
    return torch.tensor(out.reshape(n, T, n_inputs), dtype=dtype)


