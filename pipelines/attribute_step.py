"""``vaetools attribute``: move images along the direction from one label's mean code to another's."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from vaetools_pipelines import common_options as common
from vaetools_pipelines.option_types import FiniteFloat, id_list
from vaetools_pipelines.output_set import writes_output_set
from vaetools_pipelines.step_api import Step, option
from vaetools_pipelines.steps import from_model


@dataclass(frozen=True)
class AttributeParameters:
    model_dir: str = common.model_run()
    data: str = common.data()
    out: str = common.out_folder()
    source: str = option(None, flags=("--from",), required=True, metavar="LABEL", help="The label to move away from.")
    target: str = option(None, flags=("--to",), required=True, metavar="LABEL", help="The label to move towards.")
    images: tuple = option((), multiple=True, callback=id_list, metavar="ID", show_default="--n random images of the --from label",
                           help="Images to move; repeatable or comma-separated.")
    n: int = option(4, type=click.IntRange(min=1, max=100), help="Random images of the --from label without --images.")
    steps: int = option(6, type=click.IntRange(min=2, max=64), help="Images per row after the input.")
    strength: float = option(1.0, type=FiniteFloat(-100, 100),
                             help="How far to go: 1 moves by the whole difference of the two mean codes.")
    split: str = common.split()
    device: str = common.device()
    seed: int = common.seed("Random seed: the same seed gives the same pictures.")
    quiet: bool = common.quiet()


@writes_output_set
def run(p: AttributeParameters) -> dict:
    """Writes attribute.png (a row per image: the input, then its code moved 0 .. ``p.strength`` times
    the vector), attribute.npz and summary.json (the vector, the images behind each mean)."""
    import numpy as np

    from vae_tools.atomic import write_json
    from vae_tools.embedding import embed, latent_matrix
    from vae_tools.errors import DataError
    from vae_tools.generation import attribute_shift
    from vaetools_pipelines.figures import thumbnail_rows
    from vaetools_pipelines.image_writers import save_images_npz
    from vaetools_pipelines.run_inputs import load_model_and_data, positions_of_ids

    model, dataset, torch_device = load_model_and_data(p.model_dir, p.data, p.split, p.device)
    if not dataset.has_labels:
        raise DataError(f"{p.data}: has no labels, and an attribute vector is the difference of two labels' mean codes")
    labels = np.asarray(dataset.labels).astype(str)
    for name in (p.source, p.target):
        if not (labels == str(name)).any():
            known = ", ".join(sorted(set(labels.tolist()))[:20])
            raise DataError(f"{p.data}: no image has the label {str(name)!r} (its labels: {known})")
    latents = latent_matrix(embed(model, dataset, device=torch_device, progress=not p.quiet))
    if p.images:
        positions = positions_of_ids(dataset, p.images, p.data)
    else:
        of_source = np.flatnonzero(labels == str(p.source))
        positions = np.sort(np.random.default_rng(p.seed).choice(of_source, size=min(p.n, len(of_source)), replace=False))
    inputs = dataset.batch(positions).numpy()
    shift = attribute_shift(model, inputs, latents, labels, p.source, p.target, steps=p.steps, strength=p.strength)
    ids = dataset.ids[positions].astype(str)
    out = Path(p.out)
    rows = [(ids[k], np.concatenate([inputs[k:k + 1], shift.images[k]]),
             ["input"] + [f"{s:.2f}" for s in shift.strengths]) for k in range(len(positions))]
    thumbnail_rows(rows, out / "attribute.png", title=f"'{p.source}' → '{p.target}': input, then its code moved "
                   "along the attribute vector", max_columns=p.steps + 1)
    save_images_npz(out / "attribute.npz", {"x": shift.images.reshape(-1, *dataset.shape)},
                    id=np.repeat(ids, p.steps), strength=np.tile(shift.strengths, len(ids)),
                    vector=shift.vector.numpy())
    summary = {"from": str(p.source), "to": str(p.target), "images_per_label": shift.counts,
               "vector_norm": float(shift.vector.norm()), "vector": shift.vector.tolist(), "ids": ids.tolist(),
               "strengths": shift.strengths.tolist(), "model": str(p.model_dir), "data": p.data}
    write_json(out / "summary.json", summary)
    return summary


def report(summary: dict, p: AttributeParameters) -> list:
    from pathlib import Path

    counts = summary["images_per_label"]
    return [f"vector from the mean of {counts[str(p.source)]} '{p.source}' images to {counts[str(p.target)]} "
            f"'{p.target}' images (norm {summary['vector_norm']:.2f}); moved {len(summary['ids'])} images: "
            f"{Path(p.out) / 'attribute.png'}"]


STEP = Step(name="attribute", parameters=AttributeParameters, run=run, report=report, output="attribute",
            supplies=from_model, needs=("train",),
            help="""Move images along an attribute vector: the mean code of the --to label minus that of the
    --from label (the labels of SOURCE). Writes attribute.png, attribute.npz and summary.json.""")
