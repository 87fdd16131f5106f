"""Sparse-convolution engines behind one small interface (convolution, strided and transposed
convolution, batch norm, ReLU, residual sum, concatenation, sparse tensor in / features out).

``minkowski``: MinkowskiEngine 0.5.4, the authors' engine (CPU). ``spconv``: spconv 2.x, CPU
and CUDA. Both hold the same parameters under the same names, so a state dict moves freely.
"""

from __future__ import annotations

from functools import cache

BACKENDS = ("minkowski", "spconv")


@cache
def get_backend(name: str):
    """The backend object named ``name`` (imports its engine on first use)."""
    if name == "minkowski":
        from lgseg.models.backends.minkowski import MinkowskiBackend
        return MinkowskiBackend()
    if name == "spconv":
        from lgseg.models.backends.spconv import SpconvBackend
        return SpconvBackend()
    raise ValueError(f"model.backend must be one of {', '.join(BACKENDS)}, not {name!r}")
