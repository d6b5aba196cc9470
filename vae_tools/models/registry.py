"""Choose a model by name, as torchvision does: ``get_model("conv", latent_dim=16, ...)``."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Callable

from vae_tools.errors import ConfigError

if TYPE_CHECKING:
    from torch import nn

# The built-in models and the module that registers each: their names are known (for the command line's help) without
# importing torch, and a module is imported only when its model is asked for.
BUILTIN_MODELS = {"conv": "vae_tools.models.conv_vae", "denoising": "vae_tools.models.denoising",
                  "photo": "vae_tools.models.photo_vae"}
_MODELS: dict[str, type[nn.Module]] = {}


def register_model(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    def add(cls: type[nn.Module]) -> type[nn.Module]:
        from vae_tools.models.base import BaseVAE

        if not (isinstance(cls, type) and issubclass(cls, BaseVAE)):
            raise TypeError(f"model {name!r}: {cls!r} is not a subclass of vae_tools.models.base.BaseVAE")
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _MODELS[name] = cls
        cls.registry_name = name
        return cls

    return add


def list_models() -> list[str]:
    return sorted(set(_MODELS) | set(BUILTIN_MODELS))


def get_model_class(name: str) -> type[nn.Module]:
    if name not in _MODELS and name in BUILTIN_MODELS:
        importlib.import_module(BUILTIN_MODELS[name])
    try:
        return _MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(list_models())}") from None


def get_model(name: str, **params) -> nn.Module:
    return get_model_class(name)(**params)
