"""Run by tests/test_distributed.py under ``torchrun``: train, embed and fine-tune on labels through
the library in a gloo process group, then write what each process ended with, so the test can
compare the ranks."""

import sys
from pathlib import Path

import numpy as np
from safetensors.torch import save_file

from vae_tools.config import TrainConfig
from vae_tools.data import load_dataset
from vae_tools.embedding import embed, latent_matrix
from vae_tools import distributed, train
from vae_tools.training.label_fine_tune import fine_tune_on_labels


def main(data: str, out: str) -> None:
    distributed.start_from_environment("cpu")
    rank = distributed.rank()
    config = TrainConfig(epochs=2, batch_size=32, latent_dim=4, hidden_dim=32, widths=[8, 16], device="cpu")
    result = train(load_dataset(data), config, progress=False)
    folder = Path(out)
    save_file({k: v.contiguous() for k, v in result.model.state_dict().items()}, str(folder / f"weights_rank{rank}.safetensors"))
    frame = embed(result.model, load_dataset(data), batch_size=64)
    np.save(folder / f"latents_rank{rank}.npy", latent_matrix(frame))
    (folder / f"ids_rank{rank}.txt").write_text("\n".join(frame["id"]))
    (folder / f"val_loss_rank{rank}.txt").write_text(repr(result.history[-1]["val_loss"]))
    labelled = load_dataset(data)
    fine_tune_on_labels(result.model, labelled, labelled.labels, np.ones(len(labelled)), 2, epochs=1, batch_size=32,
                        progress=False)
    save_file({k: v.contiguous() for k, v in result.model.state_dict().items()}, str(folder / f"tuned_rank{rank}.safetensors"))
    distributed.stop()


if __name__ == "__main__":
    main(*sys.argv[1:])
