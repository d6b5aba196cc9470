"""Per-image quality of a restored image against the clean one: PSNR and SSIM (scikit-image)."""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from vae_tools.errors import DataError

# PSNR of an exact copy is infinite; report this ceiling instead so averages stay finite.
MAX_PSNR = 100.0


def psnr_ssim(clean: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """PSNR (dB) and SSIM of each image of ``other`` against ``clean``; both NCHW floats in [0, 1]."""
    if clean.shape != other.shape:
        raise DataError(f"cannot compare images of shape {clean.shape[1:]} x{len(clean)} with {other.shape[1:]} x{len(other)}")
    psnr = np.empty(len(clean), dtype=np.float64)
    ssim = np.empty(len(clean), dtype=np.float64)
    side = min(clean.shape[2:])
    window = min(7, side if side % 2 else side - 1)
    for i, (a, b) in enumerate(zip(clean, other)):
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        psnr[i] = MAX_PSNR if np.array_equal(a64, b64) else min(MAX_PSNR, peak_signal_noise_ratio(a64, b64, data_range=1.0))
        ssim[i] = structural_similarity(a64, b64, data_range=1.0, channel_axis=0, win_size=window)
    return psnr, ssim
