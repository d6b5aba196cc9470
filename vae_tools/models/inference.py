"""What a trained model says about a batch of images, below every use of it: posterior statistics
(`encode_rows`) and the likelihood terms of each image (`likelihood_terms`). Embedding, scoring and
the generative side all build on these, so none of them reaches into another."""

from __future__ import annotations

import math

import numpy as np
import torch

from vae_tools.models.base import BaseVAE
from vae_tools.models.losses import kl_to_standard_normal
from vae_tools.progress import progress as progress_of

LOG_2PI = math.log(2 * math.pi)


def encode_rows(model, dataset, positions, batch_size, device, elbo=False, elbo_samples=1, progress=False,
                workers=0) -> torch.Tensor:
    """(rows, 2d + 2) float32 on the CPU: mu, logvar, then reconstruction NLL and KL (zeros without ``elbo``)."""
    d = model.latent_dim
    out = torch.zeros((len(positions), 2 * d + 2), dtype=torch.float32)
    if not len(positions):
        return out
    share = dataset.subset(positions)
    if workers > 0:
        batches = ((rows, x.to(device, non_blocking=True)) for rows, x in
                   share.iter_batches(batch_size, progress=progress, desc="embedding", workers=workers))
    else:
        starts = range(0, len(share), batch_size)
        batches = ((np.arange(s, min(s + batch_size, len(share))), None) for s in starts)
        batches = progress_of(batches, total=len(starts), desc="embedding", enabled=progress, unit="batch")
    for rows, x in batches:
        x = share.batch_on(rows, device) if x is None else x
        mu, lv = model.encode(x)
        parts = [mu.float(), lv.float()]
        if elbo:
            recon = torch.zeros(len(x), device=device)
            for _ in range(elbo_samples):
                recon += model.reconstruction_nll(model.decode(model.reparameterize(mu, lv)), x)
            parts += [(recon / elbo_samples)[:, None], kl_to_standard_normal(mu.float(), lv.float())[:, None]]
        block = torch.cat(parts, dim=1)
        out[rows[0]:rows[-1] + 1, :block.shape[1]] = block.cpu()
    return out


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) / logvar.exp()).sum(-1)


def likelihood_terms(model: BaseVAE, x: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor, samples: int,
                     generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Per image of ``x`` (posterior ``mu``, ``logvar``): the negative ELBO (``elbo``), the negative
    importance-weighted bound over the same ``samples`` draws of z (``iwae``, Burda et al. 2016), and
    the ELBO's two terms (``recon``, ``kl``), in nats. The draws come from ``generator`` on the CPU,
    so a result does not depend on the device or on anything else drawn in the process.

    Every image takes the same ``samples`` standard-normal draws (common random numbers): an image's
    estimate then depends on the image and the generator alone, not on which batch or place in it
    the image has, and differences between images carry no noise of their own draws."""
    mu, logvar = mu.float(), logvar.float()
    log_weights, recon = [], torch.zeros(len(x), device=x.device)
    draws = torch.randn((samples, mu.shape[1]), generator=generator).to(x.device)
    for eps in draws:
        z = mu + eps * (0.5 * logvar).exp()
        nll = model.reconstruction_nll(model.decode(z), x).float()
        recon += nll
        log_prior = -0.5 * (LOG_2PI + z.pow(2)).sum(-1)
        log_weights.append(-nll + log_prior - gaussian_log_density(z, mu, logvar))
    kl = kl_to_standard_normal(mu, logvar)
    iwae = -(torch.logsumexp(torch.stack(log_weights), 0) - math.log(samples))
    recon = recon / samples
    return {"elbo": recon + kl, "iwae": iwae, "recon": recon, "kl": kl}
