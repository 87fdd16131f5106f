"""One registry per kind of object, Pointcept-style: models, losses, optimisers, schedulers,
transforms, text encoders, hooks. Each is built from a ``{"type": ..., **options}`` dict (models
say ``name``: what saved models' meta records); ``lgseg.config`` makes those dicts from params.yaml.

Convention: a builder's ordinary parameters are the cfg keys it accepts; its keyword-only
parameters are run-time context passed to ``build`` (e.g. ``class_counts``), never read from cfg.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any


class Registry:
    """Named builders; ``build(cfg)`` calls the one named by ``cfg[type_key]`` with the other keys."""

    def __init__(self, name: str, type_key: str = "type") -> None:
        self.name, self.type_key = name, type_key
        self._builders: dict[str, Callable[..., Any]] = {}

    def register(self, key: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: ``@REG.register("focal")`` above a class or function."""
        def deco(builder: Callable[..., Any]) -> Callable[..., Any]:
            if key in self._builders:
                raise ValueError(f"{self.name} type {key!r} is already registered")
            self._builders[key] = builder
            return builder
        return deco

    def keys(self) -> tuple[str, ...]:
        """Registered names, in registration order."""
        return tuple(self._builders)

    def get(self, key: str) -> Callable[..., Any]:
        if key not in self._builders:
            raise ValueError(f"{self.name}.{self.type_key} must be one of {', '.join(self._builders)}, not {key!r}")
        return self._builders[key]

    def cfg_keys(self, key: str) -> tuple[str, ...]:
        """The cfg keys builder ``key`` accepts (besides the type key)."""
        params = inspect.signature(self.get(key)).parameters.values()
        return tuple(p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD)

    def build(self, cfg: Mapping[str, Any], **context: Any) -> Any:
        """Build from ``cfg``; pass each ``context`` entry the builder declares keyword-only.

        Unknown keys and invalid values raise ValueError naming the key and what is allowed.
        """
        tk = self.type_key
        if not isinstance(cfg, Mapping):
            raise ValueError(f"{self.name} config must be a mapping with a {tk!r} key, not {cfg!r}")
        if tk not in cfg:
            raise ValueError(f"{self.name}.{tk} is missing: the config needs a {tk!r} key, one of "
                             f"{', '.join(self._builders)}")
        key = cfg[tk]
        builder = self.get(key)
        params = inspect.signature(builder).parameters.values()
        cfg_keys = [p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
        ctx_keys = {p.name for p in params if p.kind is p.KEYWORD_ONLY}
        kwargs = {k: v for k, v in cfg.items() if k != tk}
        for k in kwargs:
            if k not in cfg_keys:
                allowed = ", ".join([tk, *cfg_keys])
                raise ValueError(
                    f"{self.name}.{k} is not a key of {self.name} type {key!r}; allowed keys: {allowed}"
                )
        kwargs.update({k: v for k, v in context.items() if k in ctx_keys})
        try:
            return builder(**kwargs)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{self.name} type {key!r}: {e}") from e
