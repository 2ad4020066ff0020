"""The README's spec reference names every key a spec accepts (so docs and validation do not drift)."""
import typing
from pathlib import Path

from snnbatch.orchestrator import spec

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def _classes(annotation):
    inner = typing.get_args(annotation)
    members = typing.get_args(inner[0]) if inner else ()
    return list(members) or [inner[0] if inner else annotation]


def test_every_spec_key_is_documented():
    missing = []
    for name, field in spec.Spec.model_fields.items():
        assert f"`{name}`" in README, name
        ann = field.annotation
        classes = _classes(ann) if typing.get_origin(ann) is typing.Annotated else [ann]
        for cls in classes:
            for key in getattr(cls, "model_fields", {}):
                if f"`{key}`" not in README:
                    missing.append(f"{name}.{key}")
    assert not missing, f"undocumented spec keys: {missing}"
