"""Torch modules, chosen by name: ``get_model("conv" | "denoising", **params)``."""

from vae_tools.models.conv_vae import ConvVAE, VAEOutput
from vae_tools.models.denoising import DenoisingVAE
from vae_tools.models.noise import corrupt, parse_noise
from vae_tools.models.registry import get_model, get_model_class, list_models, register_model

__all__ = [
    "ConvVAE", "DenoisingVAE", "VAEOutput", "corrupt", "get_model", "get_model_class", "list_models",
    "parse_noise", "register_model",
]
