"""``python -m benchmarks.worker module:function JSON``: run one measurement in this fresh interpreter.

The function's return value (a dict) is printed as JSON on the last line of stdout,
with this process's peak resident memory added as ``peak_rss_mib``.
"""
from __future__ import annotations

import importlib
import json
import sys


def main() -> None:
    target, kwargs = sys.argv[1], json.loads(sys.argv[2])
    module, function = target.split(":")
    result = getattr(importlib.import_module(module), function)(**kwargs)
    from .common import peak_rss_mib

    result.setdefault("peak_rss_mib", peak_rss_mib())
    print(json.dumps(result, default=float))


if __name__ == "__main__":
    main()
