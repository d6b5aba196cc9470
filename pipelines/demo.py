"""``vaetools demo``: the whole path on the built-in ``digits`` set, offline, in well under a minute."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from pipelines.embed_step import run_embed
from pipelines.train_step import run_train
from vae_tools.errors import VaeToolsError
from vae_tools.run_folder import CONFIG_FILE, read_run_config


def run_demo(out: str | Path = "runs/demo", epochs: int = 60, progress: bool = True) -> dict:
    out = Path(out)
    model_dir = out / "model"
    if (model_dir / CONFIG_FILE).exists():
        read_run_config(model_dir)  # only ever replace a folder that is a vaetools run
        shutil.rmtree(model_dir)
    elif out.exists() and any(out.iterdir()) and not (out / "embeddings.parquet").exists():
        raise VaeToolsError(f"{out}: exists and is not a demo folder; pass another --out")
    started = time.perf_counter()
    result = run_train("digits", model_dir, config="conv", overrides={"epochs": epochs}, progress=progress)
    trained = time.perf_counter()
    frame = run_embed(model_dir, "digits", out / "embeddings.parquet", elbo=True, progress=progress)
    return {
        "run_folder": str(model_dir),
        "embeddings": str(out / "embeddings.parquet"),
        "epochs_trained": len(result.history),
        "best_val_neg_elbo": min(row["val_loss"] for row in result.history),
        "n_samples": len(frame),
        "latent_dim": result.model.latent_dim,
        "train_seconds": trained - started,
        "total_seconds": time.perf_counter() - started,
    }
