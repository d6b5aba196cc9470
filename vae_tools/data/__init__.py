"""Reading images from every supported source into one :class:`ImageDataset`."""

from vae_tools.data.builtin import BUILTIN_NAMES
from vae_tools.data.dataset import ImageDataset
from vae_tools.data.loader import SOURCE_HELP, load_dataset

__all__ = ["BUILTIN_NAMES", "ImageDataset", "SOURCE_HELP", "load_dataset"]
