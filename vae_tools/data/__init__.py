"""Reading images from every supported source into one :class:`ImageDataset`."""

from vae_tools.lazy import lazy_exports

_EXPORTS = {"BUILTIN_NAMES": "vae_tools.data.builtin", "ImageDataset": "vae_tools.data.dataset",
            "SOURCE_HELP": "vae_tools.data.source_help", "load_dataset": "vae_tools.data.loader"}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
