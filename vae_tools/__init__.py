"""vaetools: train convolutional and denoising VAEs on images and put their latent space to work."""

__version__ = "0.1.0"

from vae_tools.data import ImageDataset, load_dataset  # noqa: E402
from vae_tools.denoise import denoise  # noqa: E402
from vae_tools.embedding import embed  # noqa: E402
from vae_tools.latent import LabelPropagator, LatentClusterer  # noqa: E402
from vae_tools.semi_supervised import propagate_labels  # noqa: E402
from vae_tools.sklearn_api import VAEEmbedder, load_model  # noqa: E402
from vae_tools.training import train  # noqa: E402

__all__ = ["ImageDataset", "LabelPropagator", "LatentClusterer", "VAEEmbedder", "__version__", "denoise", "embed", "load_dataset",
           "load_model", "propagate_labels", "train"]
