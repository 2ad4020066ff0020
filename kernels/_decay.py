"""The decay factors per step of a network config's time constants, declared once for every config."""
from __future__ import annotations

import math


def decays(cls):
    """Class decorator of a config (a NamedTuple with ``dt``, ``tau_syn``, ``tau_mem`` and perhaps ``tau_adapt``):
    read-only properties ``alpha`` = exp(−dt/tau_syn), ``beta`` = exp(−dt/tau_mem) and, when the class has
    ``tau_adapt``, ``rho`` = exp(−dt/tau_adapt)."""
    cls.alpha = property(lambda self: math.exp(-self.dt / self.tau_syn),
                         doc="exp(−dt/tau_syn): the synaptic current's decay per step")
    cls.beta = property(lambda self: math.exp(-self.dt / self.tau_mem),
                        doc="exp(−dt/tau_mem): the membrane voltage's decay per step")
    if "tau_adapt" in cls._fields:
        cls.rho = property(lambda self: math.exp(-self.dt / self.tau_adapt),
                           doc="exp(−dt/tau_adapt): the adaptation trace's decay per step")
    return cls
