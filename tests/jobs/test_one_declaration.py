"""A parameter is declared once, on its section: the kernels' own defaults never disagree with it."""
import pytest

from snnbatch.jobs import registry
from snnbatch.kernels import alif, dendritic, force, lif

KERNEL_CONFIGS = {"lif": lif.LIFConfig, "alif": alif.ALIFConfig, "dendritic": dendritic.DendriticConfig,
                  "force": force.ForceConfig}


@pytest.mark.parametrize("name", sorted(KERNEL_CONFIGS))
def test_kernel_defaults_are_the_sections_defaults(name):
    alg = registry.algorithm(name)
    kernel = KERNEL_CONFIGS[name]
    sections = [alg.model] + [r.section for r in alg.rules]
    drift = []
    for section in sections:
        for key, field in section.model_fields.items():
            if key in kernel._field_defaults and not field.is_required():
                # "auto" is resolved by the trainer before the kernel's config is built: to numbers in a
                # recurrent network (they enter its task id), to the kernel's None elsewhere (recurrent_given)
                default = None if field.default == "auto" else field.default
                if kernel._field_defaults[key] != default:
                    drift.append(f"{section.__name__}.{key} = {field.default!r}, "
                                 f"{kernel.__name__}.{key} = {kernel._field_defaults[key]!r}")
    assert not drift, drift
