"""Rough seconds of each stage of label propagation, for the plan printed before the work starts.

Measured on the 2-core machine the defaults were chosen on (AMD EPYC, torch and faiss on the CPU),
on MNIST-sized images; a guide to the order of magnitude, not a promise. Time spent in the VAE is not
here: it is timed on the data itself (``semi_supervised.embedding_seconds``)."""

from __future__ import annotations

from vae_tools.latent.neighbors import EXACT_LIMIT

# A 10-d UMAP map: 70,000 points and 100 layout epochs take about 20 s.
UMAP_SECONDS_PER_POINT_EPOCH = 3e-6
# Exact neighbours (faiss, flat index): 150,000 points of 66 dimensions in 34 s.
EXACT_SECONDS_PER_PAIR_DIMENSION = 2.3e-11
# HNSW neighbours beyond EXACT_LIMIT: a million points in 60 s at 16 dimensions, 128 s at 66.
HNSW_SECONDS_PER_POINT = 3.8e-5
HNSW_SECONDS_PER_POINT_DIMENSION = 1.4e-6
# Label spreading over a 15-NN graph, ten classes: a million points in 16 s.
SPREAD_SECONDS_PER_POINT = 1.6e-5
# Reading the pixels and their principal components: a million 28x28 images in 15 s.
PIXEL_SECONDS_PER_POINT = 1.5e-5


def map_seconds(n: int, epochs: int) -> float:
    return n * epochs * UMAP_SECONDS_PER_POINT_EPOCH


def graph_seconds(n: int, dimensions: int) -> float:
    """The neighbour graph of ``n`` points: exact up to EXACT_LIMIT points, HNSW beyond."""
    if n <= EXACT_LIMIT:
        return n * n * dimensions * EXACT_SECONDS_PER_PAIR_DIMENSION
    return n * (HNSW_SECONDS_PER_POINT + HNSW_SECONDS_PER_POINT_DIMENSION * dimensions)


def spread_seconds(n: int) -> float:
    return n * SPREAD_SECONDS_PER_POINT


def pixel_seconds(n: int) -> float:
    return n * PIXEL_SECONDS_PER_POINT
