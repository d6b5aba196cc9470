"""Random views of images, batched in torch: pixel shifts for training any model on labels, and for
photographs the consistency term's crops, flips and colour changes (SimCLR's list: random resized
crop, horizontal flip, colour jitter, random grey; its Gaussian blur is left out, since at 32x32 it
removes most of an object). Strokes and documents never get these views: a flipped 2 or a cropped
letter is another symbol."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class PhotoViews:
    min_scale: float = 0.2  # the smallest crop, as a share of the image's area
    flip: bool = True
    jitter: float = 0.4  # brightness, contrast and saturation move by up to this share
    jitter_probability: float = 0.8
    grey_probability: float = 0.2

    def __call__(self, x: torch.Tensor, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        """A random view of each image of ``x`` (B, C, H, W) in [0, 1], the same shape and range."""
        return colour_jitter(resized_crop(x, self.min_scale, self.flip, generator), self, generator)


def _uniform(n: int, low: float, high: float, like: torch.Tensor, generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, device=like.device, generator=generator, dtype=like.dtype)


def resized_crop(x: torch.Tensor, min_scale: float, flip: bool, generator=None) -> torch.Tensor:
    """Each image cut to a random box of min_scale..1 of its area (aspect 3/4..4/3), resized back to
    the full size by bilinear sampling, and mirrored left-right half of the time."""
    n = x.shape[0]
    area = _uniform(n, min_scale, 1.0, x, generator)
    log_ratio = _uniform(n, torch.log(torch.tensor(3 / 4)).item(), torch.log(torch.tensor(4 / 3)).item(), x, generator)
    ratio = torch.exp(log_ratio)
    width = torch.sqrt(area * ratio).clamp(max=1.0)
    height = torch.sqrt(area / ratio).clamp(max=1.0)
    centre_x = _uniform(n, -1.0, 1.0, x, generator) * (1 - width)
    centre_y = _uniform(n, -1.0, 1.0, x, generator) * (1 - height)
    sign = torch.ones(n, device=x.device, dtype=x.dtype)
    if flip:
        sign = torch.where(torch.rand(n, device=x.device, generator=generator) < 0.5, -sign, sign)
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = width * sign
    theta[:, 0, 2] = centre_x
    theta[:, 1, 1] = height
    theta[:, 1, 2] = centre_y
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def colour_jitter(x: torch.Tensor, views: PhotoViews, generator=None) -> torch.Tensor:
    """Brightness, contrast and saturation each scaled by a factor in [1 - jitter, 1 + jitter] (for a
    share jitter_probability of the images), then a share grey_probability turned grey."""
    n = x.shape[0]
    shape = (n, 1, 1, 1)

    def factor():
        moved = torch.rand(n, device=x.device, generator=generator) < views.jitter_probability
        value = _uniform(n, 1 - views.jitter, 1 + views.jitter, x, generator)
        return torch.where(moved, value, torch.ones_like(value)).view(shape)

    x = (x * factor()).clamp(0, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * factor() + mean).clamp(0, 1)
    if x.shape[1] == 3:
        grey = (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:]).expand_as(x)
        x = ((x - grey) * factor() + grey).clamp(0, 1)
        to_grey = (torch.rand(n, device=x.device, generator=generator) < views.grey_probability).view(shape)
        x = torch.where(to_grey, grey, x)
    return x


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image by its own random offset of up to ``max_shift`` pixels per axis (edge
    pixels repeat into the gap)."""
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, mode="replicate")
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=generator).to(x.device)
    rows = torch.arange(h, device=x.device)[None, :] + offsets[:, :1]
    cols = torch.arange(w, device=x.device)[None, :] + offsets[:, 1:]
    picked = padded[torch.arange(n, device=x.device)[:, None, None], :, rows[:, :, None], cols[:, None, :]]
    return picked.permute(0, 3, 1, 2).contiguous()  # advanced indexing put channels last


def nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float) -> torch.Tensor:
    """SimCLR's contrastive loss for two views (B, D) of the same B images: each view must pick its
    partner out of the other 2B - 2 views by cosine similarity."""
    z = F.normalize(torch.cat([a, b]).float(), dim=1)
    logits = z @ z.T / temperature
    n = a.shape[0]
    logits.fill_diagonal_(float("-inf"))
    partner = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(a.device)
    return F.cross_entropy(logits, partner)
