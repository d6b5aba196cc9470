"""vaetools: train convolutional and denoising VAEs on images and put their latent space to work."""

from vae_tools.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "ImageDataset": "vae_tools.data", "load_dataset": "vae_tools.data", "denoise": "vae_tools.denoising",
    "embed": "vae_tools.embedding", "LabelPropagator": "vae_tools.latent", "LatentClusterer": "vae_tools.latent",
    "propagate_labels": "vae_tools.semi_supervised", "SelfTrainingPropagator": "vae_tools.semi_supervised",
    "VAEEmbedder": "vae_tools.sklearn_api",
    "load_model": "vae_tools.sklearn_api", "train": "vae_tools.training",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted([*_EXPORTS, "__version__"])
