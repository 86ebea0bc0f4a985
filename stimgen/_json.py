"""JSON for stimgen's records, manifests and command-line output.

jsonable     numpy scalars and arrays, tuples and non-finite floats -> plain JSON values
dumps        ``jsonable`` then ``json.dumps``, with a trailing newline (files)
print_json   one JSON object on stdout

Non-finite floats (NaN, inf) become ``null``: JSON has no such numbers, and a quantity that
could not be measured is stated as missing, never as a number.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["dumps", "jsonable", "print_json"]


def jsonable(obj: Any) -> Any:
    """Convert numpy scalars/arrays, tuples and non-finite floats into JSON-ready values."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dumps(obj: Any, *, indent: int = 1) -> str:
    """``obj`` as JSON text (through :func:`jsonable`) ending in a newline, for files."""
    return json.dumps(jsonable(obj), indent=indent) + "\n"


def print_json(obj: Any) -> None:
    """Print one JSON object on stdout."""
    print(json.dumps(jsonable(obj), indent=2))
