"""The latent space at work: neighbour graphs, label propagation, clustering and 2-D maps."""

from vae_tools.latent.clustering import LatentClusterer, cluster_scores
from vae_tools.latent.labels import hide_labels
from vae_tools.latent.metrics import classification_metrics
from vae_tools.latent.neighbors import nearest_neighbors
from vae_tools.latent.projection import umap_2d
from vae_tools.latent.propagation import LabelPropagator
from vae_tools.latent.suggest import suggest_labels

__all__ = ["LabelPropagator", "LatentClusterer", "classification_metrics", "cluster_scores", "hide_labels",
           "nearest_neighbors", "suggest_labels", "umap_2d"]
