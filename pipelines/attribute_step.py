"""``vaetools attribute``: move images along the direction from one label's mean code to another's."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from vaetools_pipelines.figures import thumbnail_rows
from vaetools_pipelines.image_writers import save_images_npz
from vaetools_pipelines.output_set import writes_output_set
from vaetools_pipelines.run_inputs import load_model_and_data, positions_of_ids
from vae_tools.atomic import write_json
from vae_tools.embedding import embed, latent_matrix
from vae_tools.errors import DataError
from vae_tools.generation import attribute_shift


@writes_output_set
def run_attribute(model_dir: str | Path, data: str, out: str | Path, source: str, target: str,
                  images: Sequence[str] = (), n: int = 4, steps: int = 6, strength: float = 1.0, split: str = "all",
                  device: str = "auto", seed: int = 0, progress: bool = False) -> dict:
    """Writes attribute.png (a row per image: the input, then its code moved 0 .. ``strength`` times
    the vector), attribute.npz and summary.json (the vector, the images behind each mean)."""
    model, dataset, torch_device = load_model_and_data(model_dir, data, split, device)
    if not dataset.has_labels:
        raise DataError(f"{data}: has no labels, and an attribute vector is the difference of two labels' mean codes")
    labels = np.asarray(dataset.labels).astype(str)
    for name in (source, target):
        if not (labels == str(name)).any():
            known = ", ".join(sorted(set(labels.tolist()))[:20])
            raise DataError(f"{data}: no image has the label {str(name)!r} (its labels: {known})")
    latents = latent_matrix(embed(model, dataset, device=torch_device, progress=progress))
    if images:
        positions = positions_of_ids(dataset, images, data)
    else:
        of_source = np.flatnonzero(labels == str(source))
        positions = np.sort(np.random.default_rng(seed).choice(of_source, size=min(n, len(of_source)), replace=False))
    inputs = dataset.batch(positions).numpy()
    shift = attribute_shift(model, inputs, latents, labels, source, target, steps=steps, strength=strength)
    ids = dataset.ids[positions].astype(str)
    out = Path(out)
    rows = [(ids[k], np.concatenate([inputs[k:k + 1], shift.images[k]]),
             ["input"] + [f"{s:.2f}" for s in shift.strengths]) for k in range(len(positions))]
    thumbnail_rows(rows, out / "attribute.png", title=f"'{source}' → '{target}': input, then its code moved "
                   "along the attribute vector", max_columns=steps + 1)
    save_images_npz(out / "attribute.npz", {"x": shift.images.reshape(-1, *dataset.shape)},
                    id=np.repeat(ids, steps), strength=np.tile(shift.strengths, len(ids)),
                    vector=shift.vector.numpy())
    summary = {"from": str(source), "to": str(target), "images_per_label": shift.counts,
               "vector_norm": float(shift.vector.norm()), "vector": shift.vector.tolist(), "ids": ids.tolist(),
               "strengths": shift.strengths.tolist(), "model": str(model_dir), "data": data}
    write_json(out / "summary.json", summary)
    return summary
