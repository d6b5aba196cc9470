"""The latent space at work: neighbour graphs, label propagation, clustering and 2-D maps."""

from vae_tools.lazy import lazy_exports

_EXPORTS = {"LabelPropagator": "vae_tools.latent.propagation", "LatentClusterer": "vae_tools.latent.clustering",
            "classification_metrics": "vae_tools.latent.metrics", "cluster_scores": "vae_tools.latent.clustering",
            "hide_labels": "vae_tools.latent.labels", "keep_per_class": "vae_tools.latent.labels", "nearest_neighbors": "vae_tools.latent.neighbors",
            "suggest_labels": "vae_tools.latent.suggest", "umap_2d": "vae_tools.latent.projection"}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
