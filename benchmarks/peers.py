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




# --------------------------------------------------------------------------- several hidden layers
#
# The networks of kernels/deep.py: layer k takes layer k-1's spikes of the same step, the readout reads
# the last layer. ``params`` and ``cfg`` are those of kernels/deep.py (w_in, w_rec, w_in1, w_rec1, ...).
#
# With the activity penalty on (``cfg.activity_upper_strength`` or ``activity_lower_strength`` > 0) every
# deep peer keeps, during forward, each hidden layer's spike counts per sample (the sum over the steps of
# the layer's spikes, (batch, H)) in ``model.counts``, and :func:`deep_loss` adds :func:`activity_penalty`
# of them to the readout loss, as kernels/deep.py's training loss does. With both strengths 0 the counts
# are not formed (``model.counts`` is None) and the loss is :func:`max_readout_loss` alone.


def _layer_names(k: int) -> tuple[str, str]:
    return ("w_in", "w_rec") if k == 0 else (f"w_in{k}", f"w_rec{k}")


def regularised(cfg) -> bool:
    """Whether ``cfg`` turns the activity penalty on (either strength > 0)."""
    return getattr(cfg, "activity_upper_strength", 0.0) > 0 or getattr(cfg, "activity_lower_strength", 0.0) > 0


def activity_penalty(counts, cfg):
    """The activity penalty of kernels/deep.py (README, Activity penalty) on the spike counts ``counts`` (one
    (batch, H) tensor per hidden layer): per layer, the mean over samples of
    Σ_i λ_u relu(c_i − θ_u)² + λ_l relu(θ_l − c_i)², summed over the layers; a bound whose strength is 0 is off."""
    total = 0.0
    for c in counts:
        terms = 0.0
        if cfg.activity_upper_strength > 0:
            terms = terms + cfg.activity_upper_strength * torch.relu(c - cfg.activity_upper) ** 2
        if cfg.activity_lower_strength > 0:
            terms = terms + cfg.activity_lower_strength * torch.relu(cfg.activity_lower - c) ** 2
        total = total + terms.sum(1).mean()
    return total


def deep_loss(model, uo, y):
    """The training loss of a deep peer's output ``uo`` (after ``model(x)``): :func:`max_readout_loss`, plus
    :func:`activity_penalty` of ``model.counts`` when the model's cfg turns the penalty on."""
    loss = max_readout_loss(uo, y)
    if model.counts is not None:
        loss = loss + activity_penalty(model.counts, model.cfg)
    return loss


class DeepSpyTorchLIF(torch.nn.Module):
    """SpyTorch's loop, layer after layer: each layer's input for all steps in one product, its steps
    in a Python loop, slices taken with ``unbind`` (the fastest form of the tutorial code above)."""

    def __init__(self, cfg, params: dict):
        super().__init__()
        self.cfg = cfg
        self.w_in = torch.nn.ParameterList()
        self.w_rec = torch.nn.ParameterList()
        self.recurrent = list(cfg.recurrent)
        for k, rec in enumerate(cfg.recurrent):
            name_in, name_rec = _layer_names(k)
            self.w_in.append(torch.nn.Parameter(torch.tensor(params[name_in])))
            self.w_rec.append(torch.nn.Parameter(torch.tensor(params[name_rec] if rec else [[0.0]])))
        self.w_out = torch.nn.Parameter(torch.tensor(params["w_out"]))
        self.regularised = regularised(cfg)
        self.counts = None

    def forward(self, x):
        cfg = self.cfg
        alpha, beta, thr = cfg.alpha, cfg.beta, cfg.threshold
        B, T, _ = x.shape
        spk = x
        counts = [] if self.regularised else None
        for k, H in enumerate(cfg.n_hidden):
            h1 = torch.einsum("abc,cd->abd", spk, self.w_in[k]).unbind(1)
            syn = torch.zeros((B, H), dtype=x.dtype)
            mem = torch.zeros((B, H), dtype=x.dtype)
            rec = []
            for t in range(T):
                out = spike_fn(mem - thr)
                rst = out.detach()
                h = h1[t]
                if self.recurrent[k]:
                    h = h + torch.mm(out, self.w_rec[k])
                syn = alpha * syn + h
                mem = beta * mem + syn - thr * rst
                rec.append(out)
            spk = torch.stack(rec, dim=1)
            if counts is not None:
                counts.append(spk.sum(1))  # (B, H): the layer's spikes S_k[0 .. T-1] summed
        self.counts = counts
        h2 = torch.einsum("abc,cd->abd", spk, self.w_out).unbind(1)
        flt = torch.zeros((B, cfg.n_outputs), dtype=x.dtype)
        uo = torch.zeros((B, cfg.n_outputs), dtype=x.dtype)
        out_rec = []
        for t in range(T):
            flt = alpha * flt + h2[t]
            uo = beta * uo + flt
            out_rec.append(uo)
        return torch.stack(out_rec, dim=1)


class DeepSnnTorchLIF(torch.nn.Module):
    """snnTorch ``Synaptic`` layers stacked, stepped together, each recurrent through a ``Linear``."""

    def __init__(self, cfg, params: dict):
        import snntorch as snn
        from snntorch import surrogate

        super().__init__()
        self.cfg = cfg
        grad = surrogate.fast_sigmoid(slope=cfg.surrogate_scale)

        def linear(w):
            layer = torch.nn.Linear(w.shape[0], w.shape[1], bias=False)
            layer.weight.data = torch.tensor(w.T.copy())
            return layer

        self.fc_in = torch.nn.ModuleList()
        self.fc_rec = torch.nn.ModuleList()
        self.lifs = torch.nn.ModuleList()
        for k, rec in enumerate(cfg.recurrent):
            name_in, name_rec = _layer_names(k)
            self.fc_in.append(linear(params[name_in]))
            self.fc_rec.append(linear(params[name_rec]) if rec else torch.nn.Identity())
            self.lifs.append(snn.Synaptic(alpha=cfg.alpha, beta=cfg.beta, threshold=cfg.threshold, spike_grad=grad,
                                          reset_mechanism="subtract"))
        self.fc_out = linear(params["w_out"])
        self.readout = snn.Synaptic(alpha=cfg.alpha, beta=cfg.beta, threshold=1e9, spike_grad=grad,
                                    reset_mechanism="none")
        self.regularised = regularised(cfg)
        self.counts = None

    def forward(self, x):
        B, T, _ = x.shape
        rec = [[] for _ in self.lifs] if self.regularised else None
        states = [lif.reset_mem() for lif in self.lifs]
        spikes = [torch.zeros((B, H), dtype=x.dtype) for H in self.cfg.n_hidden]
        syn_o, mem_o = self.readout.reset_mem()
        cur0 = self.fc_in[0](x)
        out = []
        for t in range(T):
            inp = cur0[:, t]
            for k, lif in enumerate(self.lifs):
                c = inp if k == 0 else self.fc_in[k](inp)
                if self.cfg.recurrent[k]:
                    c = c + self.fc_rec[k](spikes[k])
                spk, syn, mem = lif(c, *states[k])
                states[k], spikes[k], inp = (syn, mem), spk, spk
                if rec is not None:
                    rec[k].append(spk)
            _, syn_o, mem_o = self.readout(self.fc_out(inp), syn_o, mem_o)
            out.append(mem_o)
        self.counts = None if rec is None else [torch.stack(r, dim=1).sum(1) for r in rec]
        return torch.stack(out, dim=1)


class DeepNorseLIF(torch.nn.Module):
    """Norse ``LIFRecurrent`` (or ``Linear`` + ``LIF``) layers stacked, an ``LI`` readout; weights scaled by
    τ_mem/dt as in :class:`NorseLIF`."""

    def __init__(self, cfg, params: dict):
        import norse.torch as norse

        super().__init__()
        self.cfg = cfg
        gain = cfg.tau_mem / cfg.dt
        params = {k: v * gain for k, v in params.items()}
        p = norse.LIFParameters(tau_syn_inv=torch.as_tensor(1.0 / cfg.tau_syn),
                                tau_mem_inv=torch.as_tensor(1.0 / cfg.tau_mem),
                                v_th=torch.as_tensor(cfg.threshold), method="super",
                                alpha=torch.as_tensor(cfg.surrogate_scale))
        self.layers = torch.nn.ModuleList()
        fan_in = cfg.n_inputs
        for k, (H, rec) in enumerate(zip(cfg.n_hidden, cfg.recurrent)):
            name_in, name_rec = _layer_names(k)
            if rec:
                self.layers.append(norse.LIFRecurrent(fan_in, H, p=p, dt=cfg.dt, autapses=True,
                                                      input_weights=torch.tensor(params[name_in].T.copy()),
                                                      recurrent_weights=torch.tensor(params[name_rec].T.copy())))
            else:
                fc = torch.nn.Linear(fan_in, H, bias=False)
                fc.weight.data = torch.tensor(params[name_in].T.copy())
                self.layers.append(norse.SequentialState(fc, norse.LIF(p=p, dt=cfg.dt)))
            fan_in = H
        self.fc_out = torch.nn.Linear(fan_in, cfg.n_outputs, bias=False)
        self.fc_out.weight.data = torch.tensor(params["w_out"].T.copy())
        self.li = norse.LI(p=norse.LIParameters(tau_syn_inv=torch.as_tensor(1.0 / cfg.tau_syn),
                                                tau_mem_inv=torch.as_tensor(1.0 / cfg.tau_mem)), dt=cfg.dt)
        self.regularised = regularised(cfg)
        self.counts = None

    def forward(self, x):
        x = x.transpose(0, 1)
        counts = [] if self.regularised else None
        for layer in self.layers:
            x, _ = layer(x)
            if counts is not None:
                counts.append(x.sum(0))  # x: (T, B, H) spikes
        self.counts = counts
        uo, _ = self.li(self.fc_out(x))
        return uo.transpose(0, 1)


DEEP_PEERS = {"spytorch-unbind": DeepSpyTorchLIF, "snntorch": DeepSnnTorchLIF, "norse": DeepNorseLIF}
