"""Whether a run trains in bf16: decided from the device and the model, as the likelihood is from the images.

bf16 autocast halves the cost of the convolutions and matrix products on a CPU that multiplies bf16
natively (AVX512-BF16, AMX), where a small model's step is bound by arithmetic; the loss terms stay
in float32 (models/losses.py). On a GPU the default 28x28 model trained 13-25% slower with it (the
casts cost more than the small products save; bench/results/scale_gpu.json), and a CPU without
native bf16 would emulate it slowly, so both stay in float32. A model takes the automatic choice
only where its quality in bf16 was measured (``BaseVAE.bf16_on_cpu``)."""

from __future__ import annotations

import torch

from vae_tools.config import TrainConfig
from vae_tools.training.loop import autocast_dtype

NAMES = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


def precision(config: TrainConfig, model, device: torch.device) -> dict:
    """The run's precision (``value``: fp32, bf16 or fp16) and why; ``amp`` set in ``config`` decides."""
    if config.amp is not None:
        value = NAMES[autocast_dtype(device, config.amp)]
        short = config.amp and value == "fp32"
        return {"value": value, "automatic": False,
                "why": "set by the user (amp)" + (", but this device has no native bf16" if short else "")}
    if device.type != "cpu":
        return {"value": "fp32", "why": f"on {device.type} the default models train faster in fp32 (amp=true tries bf16)"}
    if autocast_dtype(device, True) is None:
        return {"value": "fp32", "why": "this CPU has no native bf16 (AVX512-BF16 or AMX), so fp32"}
    if not model.bf16_on_cpu:
        return {"value": "fp32",
                "why": f"the {model.registry_name} model's quality in bf16 is not measured yet (amp=true tries it)"}
    return {"value": "bf16", "why": "this CPU multiplies bf16 natively, about twice as fast as fp32, and the "
                                   "loss stays in fp32 (amp=false for fp32 throughout)"}
