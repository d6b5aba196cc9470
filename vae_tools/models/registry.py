"""Choose a model by name, as torchvision does: ``get_model("conv", latent_dim=16, ...)``."""

from __future__ import annotations

from typing import Callable

from torch import nn

from vae_tools.errors import ConfigError

_MODELS: dict[str, type[nn.Module]] = {}


def register_model(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    def add(cls: type[nn.Module]) -> type[nn.Module]:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _MODELS[name] = cls
        cls.registry_name = name
        return cls

    return add


def list_models() -> list[str]:
    return sorted(_MODELS)


def get_model_class(name: str) -> type[nn.Module]:
    try:
        return _MODELS[name]
    except KeyError:
        raise ConfigError(f"unknown model {name!r}; available: {', '.join(list_models())}") from None


def get_model(name: str, **params) -> nn.Module:
    return get_model_class(name)(**params)
