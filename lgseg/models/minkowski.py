"""MinkowskiEngine import that works on Python 3.10+.

MinkowskiEngine 0.5.4 (the last release) does ``from collections import Sequence``, removed in
Python 3.10; the fix was merged upstream but never released. Aliasing the ABCs back onto
``collections`` before the first import is enough, and keeps site-packages untouched.
"""

from __future__ import annotations

import collections
import collections.abc
import warnings

_ABCS = ("Sequence", "Mapping", "MutableMapping", "Iterable", "Callable")


def import_minkowski():
    """Return the ``MinkowskiEngine`` module, with a clear error when it is not installed."""
    for name in _ABCS:
        if not hasattr(collections, name):
            setattr(collections, name, getattr(collections.abc, name))
    try:
        with warnings.catch_warnings():  # "compiled with CPU_ONLY flag" is expected here, not news
            warnings.filterwarnings("ignore", message=".*CPU_ONLY.*")
            import MinkowskiEngine as ME
    except ImportError as e:
        raise ImportError(
            "MinkowskiEngine 0.5.4 is not installed or failed to load "
            f"({e}); run ./install.sh, which builds it for the CPU") from e
    return ME
