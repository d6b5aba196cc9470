"""Torch modules, chosen by name: ``get_model("conv" | "denoising", **params)``."""

from vae_tools.lazy import lazy_exports
from vae_tools.models.registry import get_model, get_model_class, list_models, register_model

_EXPORTS = {"BaseVAE": "vae_tools.models.base", "ConvVAE": "vae_tools.models.conv_vae",
            "VAEOutput": "vae_tools.models.base",
            "DenoisingVAE": "vae_tools.models.denoising", "corrupt": "vae_tools.models.noise",
            "parse_noise": "vae_tools.models.noise"}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted([*_EXPORTS, "get_model", "get_model_class", "list_models", "register_model"])
