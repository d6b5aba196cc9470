"""The VAE as a generator: samplers, interpolation, traversals and attribute vectors."""

from vae_tools.generation.images import (AttributeShift, Interpolation, Samples, Traversal, attribute_shift, decode,
                                         encode, interpolate, manifold_grid, negative_elbo, reconstruct, sample, traverse)
from vae_tools.generation.latent_paths import attribute_vector, kl_per_dimension, lerp, slerp
from vae_tools.generation.samplers import GaussianMixtureSampler, PriorSampler
from vae_tools.generation.summary import LatentSummary, load_latent_summary, save_latent_summary, summarise_latents

__all__ = ["AttributeShift", "GaussianMixtureSampler", "Interpolation", "LatentSummary", "PriorSampler", "Samples",
           "Traversal", "attribute_shift", "attribute_vector", "decode", "encode", "interpolate", "kl_per_dimension",
           "lerp", "load_latent_summary", "manifold_grid", "negative_elbo", "reconstruct", "sample", "save_latent_summary", "slerp",
           "summarise_latents", "traverse"]
