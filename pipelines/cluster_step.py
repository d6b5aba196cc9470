"""``vaetools cluster``: groups in the latent space, scored against the labels when known."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from vae_tools.latent.defaults import (
    CLUSTER_METHOD,
    CLUSTER_METHODS,
    CLUSTER_REDUCE,
    CLUSTERS,
    FEATURE_SETS,
    FEATURES,
)
from vaetools_pipelines import common_options as common
from vaetools_pipelines.output_set import writes_output_set
from vaetools_pipelines.sections import Section, metrics_of
from vaetools_pipelines.step_api import Step, option
from vaetools_pipelines.steps import from_embeddings
from vae_tools.latent.reducers import REDUCERS


@dataclass(frozen=True)
class ClusterParameters(common.LatentSource):
    method: str = option(CLUSTER_METHOD, type=click.Choice(CLUSTER_METHODS),
                         help="kmeans, a Gaussian mixture, or HDBSCAN (finds the number of clusters; -1 = noise).")
    n_clusters: int = option(CLUSTERS, flags=("--clusters",), type=click.IntRange(min=1),
                             help="Number of clusters (kmeans, gmm).")
    reduce: str = option(CLUSTER_REDUCE, type=click.Choice(tuple(REDUCERS)),
                         help="Map the latents to 10 dimensions with UMAP first (tighter, better separated clusters), "
                              "with PCA, or not (none).")
    features: str = option(FEATURES, type=click.Choice(FEATURE_SETS),
                           help="What to cluster: the latents, the images' first 50 principal components (pixels), or "
                                "both. auto: the set the model's kind calls for (the conv model's latents+pixels, the "
                                "photo model's latents; the reason is in metrics.json); with --embeddings and --data "
                                "but no --model, each set is clustered and the best separated kept (silhouette).")
    backend: str = common.umap_backend()
    min_cluster_size: int = option(None, type=click.IntRange(min=2), show_default="1% of the samples, at least 5",
                                   help="HDBSCAN's smallest cluster.")
    examples: int = option(10, type=click.IntRange(min=0), help="Thumbnails per cluster in cluster_examples.png (needs --data).")
    seed: int = common.seed()
    quiet: bool = common.quiet()


def report(metrics: dict, p: ClusterParameters) -> list:
    scored = f"; accuracy {metrics['accuracy']:.2%}, NMI {metrics['nmi']:.3f}" if "accuracy" in metrics else ""
    return [f"features: {metrics['features']} ({metrics['features_why']})",
            f"{metrics['n_clusters']} clusters over {metrics['n_samples']} samples{scored}; outputs in {p.out}"]


@writes_output_set
def run(p: ClusterParameters) -> dict:
    """Writes clusters.csv, metrics.json (sizes; the features used and why; accuracy, NMI and ARI
    when labels are known) and cluster_examples.png (with images) into ``p.out``."""
    import numpy as np
    import pandas as pd

    from vae_tools.atomic import write_json
    from vae_tools.latent.cluster_features import candidates_for, cluster_with_features
    from vae_tools.latent.clustering import LatentClusterer, cluster_scores
    from vae_tools.latent.features import pixel_components
    from vae_tools.semi_supervised import dataset_pixels
    from vae_tools.tables import write_table
    from vaetools_pipelines.figures import thumbnail_rows
    from vaetools_pipelines.latent_inputs import ensure_out_dir, images_for, load_latent_inputs

    inputs = load_latent_inputs(p.embeddings, p.model_dir, p.data, p.split, p.device, not p.quiet)
    template = LatentClusterer(method=p.method, n_clusters=p.n_clusters, reduce=p.reduce,
                               min_cluster_size=p.min_cluster_size, umap_backend=p.backend, random_state=p.seed)
    # Reading every image for their principal components is only worth it when a candidate uses them.
    model_choice = getattr(inputs.model, "preferred_features", None)
    names, _ = candidates_for(template, p.features, inputs.dataset is not None, len(inputs.latents), model_choice)
    wanted = inputs.dataset is not None and names != ["latents"]
    pixels = pixel_components(dataset_pixels(inputs.dataset), seed=p.seed) if wanted else None
    choice = cluster_with_features(template, inputs.latents, pixels, p.features, p.seed, model_choice)
    clusterer = choice.clusterer
    out = ensure_out_dir(p.out)
    table = pd.DataFrame({"id": inputs.ids, "cluster": clusterer.labels_,
                          "probability": np.round(clusterer.probabilities_, 5)})
    if inputs.labels is not None:
        table["true_label"] = inputs.labels
    write_table(table, out / "clusters.csv")
    sizes = pd.Series(clusterer.labels_).value_counts().sort_index()
    metrics = {"method": p.method, "reduce": p.reduce, "umap_backend": p.backend, "features": choice.features,
               "features_why": choice.why, "feature_silhouettes": choice.silhouettes,
               "n_clusters": clusterer.n_clusters_, "n_samples": int(len(table)),
               "n_noise": int((clusterer.labels_ == -1).sum()),
               "sizes": {str(k): int(v) for k, v in sizes.items()}, "seed": p.seed}
    if inputs.labels is not None:
        metrics.update(cluster_scores(inputs.labels, clusterer.labels_))
    if inputs.dataset is not None and p.examples > 0:
        rng = np.random.default_rng(p.seed)
        rows = []
        for cluster in sizes.index[:40]:
            members = np.flatnonzero(clusterer.labels_ == cluster)
            # The most confidently assigned members show what the cluster is about.
            best = members[np.argsort(-clusterer.probabilities_[members], kind="stable")[: p.examples * 3]]
            picked = np.sort(rng.choice(best, size=min(p.examples, len(best)), replace=False))
            captions = [str(inputs.labels[i]) if inputs.labels is not None else "" for i in picked]
            name = "noise" if cluster == -1 else f"cluster {cluster}"
            rows.append((f"{name} ({len(members)})", images_for(inputs, picked), captions))
        thumbnail_rows(rows, out / "cluster_examples.png", title=f"{p.method}: examples per cluster",
                       max_columns=p.examples)
        metrics["examples"] = "cluster_examples.png"
    write_json(out / "metrics.json", metrics)
    return metrics


def section(run: Path) -> Section:
    metrics = metrics_of(run, STEP.name)
    section = Section("Clustering")
    if metrics:
        text = f"{metrics['n_clusters']} clusters by {metrics['method']} over {metrics['n_samples']} images"
        if "features" in metrics:
            text += f", made on the {metrics['features']} ({metrics['features_why']})"
            if metrics.get("feature_silhouettes"):
                text += "; silhouette of each candidate: " + ", ".join(
                    f"{k} {v:.3f}" for k, v in metrics["feature_silhouettes"].items())
        if "accuracy" in metrics:
            text += (f". Against the true labels: accuracy {metrics['accuracy']:.1%} after matching each cluster to "
                     f"one label, NMI {metrics['nmi']:.3f} (0: unrelated to the labels, 1: the labels exactly), "
                     f"ARI {metrics.get('ari', float('nan')):.3f} (0: chance)")
        section.sentences.append(text + ".")
    section.figures.append((run / STEP.output / "cluster_examples.png", "The most confidently assigned images of "
                            "each cluster (true label above each).", "100%"))
    return section


def key_figures(run: Path) -> list:
    clusters = metrics_of(run, STEP.name)
    if not clusters:
        return []
    text = f"{clusters['n_clusters']} clusters ({clusters['method']})"
    if "accuracy" in clusters:
        text += f", accuracy {clusters['accuracy']:.2%}, NMI {clusters['nmi']:.3f}"
    return [("clustering", text)]


STEP = Step(name="cluster", section=section, key_figures=key_figures, parameters=ClusterParameters, run=run, report=report, output="clusters",
            supplies=from_embeddings, needs=("embed",),
            help="Cluster the latents: clusters.csv, metrics.json (accuracy, NMI, ARI when labels are known) and "
                 "cluster_examples.png.")
