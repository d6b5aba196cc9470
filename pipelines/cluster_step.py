"""``vaetools cluster``: groups in the latent space, scored against the labels when known."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import pandas as pd

from vaetools_pipelines.figures import thumbnail_rows
from vaetools_pipelines.latent_inputs import ensure_out_dir, images_for, load_latent_inputs
from vaetools_pipelines.output_set import writes_output_set
from vae_tools.atomic import write_json
from vae_tools.latent.cluster_features import candidates_for, cluster_with_features
from vae_tools.latent.clustering import LatentClusterer, cluster_scores
from vae_tools.latent.defaults import FEATURES, UMAP_BACKEND
from vae_tools.latent.features import pixel_components
from vae_tools.semi_supervised import dataset_pixels
from vae_tools.tables import write_table


@writes_output_set
def run_cluster(
    out: str | Path,
    embeddings: Optional[str] = None,
    model_dir: Optional[str] = None,
    data: Optional[str] = None,
    method: str = "kmeans",
    n_clusters: int = 10,
    reduce: str = "umap",
    features: str = FEATURES,
    backend: str = UMAP_BACKEND,
    min_cluster_size: Optional[int] = None,
    examples: int = 10,
    split: str = "all",
    device: str = "auto",
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Writes clusters.csv, metrics.json (sizes; the features used and why; accuracy, NMI and ARI
    when labels are known) and cluster_examples.png (with images) into ``out``."""
    inputs = load_latent_inputs(embeddings, model_dir, data, split, device, progress)
    template = LatentClusterer(method=method, n_clusters=n_clusters, reduce=reduce, min_cluster_size=min_cluster_size,
                               umap_backend=backend, random_state=seed)
    # Reading every image for their principal components is only worth it when a candidate uses them.
    names, _ = candidates_for(template, features, inputs.dataset is not None, len(inputs.latents))
    wanted = inputs.dataset is not None and names != ["latents"]
    pixels = pixel_components(dataset_pixels(inputs.dataset), seed=seed) if wanted else None
    choice = cluster_with_features(template, inputs.latents, pixels, features, seed)
    clusterer = choice.clusterer
    out = ensure_out_dir(out)
    table = pd.DataFrame({"id": inputs.ids, "cluster": clusterer.labels_,
                          "probability": np.round(clusterer.probabilities_, 5)})
    if inputs.labels is not None:
        table["true_label"] = inputs.labels
    write_table(table, out / "clusters.csv")
    sizes = pd.Series(clusterer.labels_).value_counts().sort_index()
    metrics = {"method": method, "reduce": reduce, "umap_backend": backend, "features": choice.features,
               "features_why": choice.why, "feature_silhouettes": choice.silhouettes,
               "n_clusters": clusterer.n_clusters_, "n_samples": int(len(table)),
               "n_noise": int((clusterer.labels_ == -1).sum()),
               "sizes": {str(k): int(v) for k, v in sizes.items()}, "seed": seed}
    if inputs.labels is not None:
        metrics.update(cluster_scores(inputs.labels, clusterer.labels_))
    if inputs.dataset is not None and examples > 0:
        rng = np.random.default_rng(seed)
        rows = []
        for cluster in sizes.index[:40]:
            members = np.flatnonzero(clusterer.labels_ == cluster)
            # The most confidently assigned members show what the cluster is about.
            best = members[np.argsort(-clusterer.probabilities_[members], kind="stable")[: examples * 3]]
            picked = np.sort(rng.choice(best, size=min(examples, len(best)), replace=False))
            captions = [str(inputs.labels[p]) if inputs.labels is not None else "" for p in picked]
            name = "noise" if cluster == -1 else f"cluster {cluster}"
            rows.append((f"{name} ({len(members)})", images_for(inputs, picked), captions))
        thumbnail_rows(rows, out / "cluster_examples.png", title=f"{method}: examples per cluster",
                       max_columns=examples)
        metrics["examples"] = "cluster_examples.png"
    write_json(out / "metrics.json", metrics)
    return metrics
