"""Loss curves of a training run, as CSV (for any tool) and PNG (to look at)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from vae_tools.atomic import atomic_path
from vae_tools.run_folder import CURVES_FILE, HISTORY_FILE


def save_history(history: list[dict], run_dir: Path, plot: bool = True) -> None:
    if not history:
        return
    frame = pd.DataFrame(history)
    with atomic_path(run_dir / HISTORY_FILE) as tmp:
        frame.to_csv(tmp, index=False)
    if plot:
        plot_history(frame, run_dir / CURVES_FILE)


def plot_history(frame: pd.DataFrame, target: Path) -> None:
    fig = history_figure(frame)
    with atomic_path(target) as tmp:
        fig.savefig(tmp, dpi=110, format="png")


def history_figure(frame: pd.DataFrame):
    """The loss, reconstruction and KL per epoch, train and validation, the kept epoch marked."""
    # A Figure of its own, not pyplot: no backend is switched and no global figure state is touched.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.4))
    axes = fig.subplots(1, 3)
    for ax, term, title in zip(axes, ("loss", "recon", "kl"), ("negative ELBO (β-weighted)", "reconstruction NLL", "KL")):
        ax.plot(frame["epoch"], frame[f"train_{term}"], marker="o", ms=3, label="train")
        if frame[f"val_{term}"].notna().any():
            ax.plot(frame["epoch"], frame[f"val_{term}"], marker="o", ms=3, label="validation")
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats per image")
        ax.grid(alpha=0.3)
    monitored = frame["val_loss"] if frame["val_loss"].notna().any() else frame["train_loss"]
    best = frame["epoch"][monitored.idxmin()]
    for ax in axes:  # the epoch whose weights the run folder keeps
        ax.axvline(best, color="#888", linestyle=":", linewidth=1)
    axes[0].plot([], [], color="#888", linestyle=":", label=f"best epoch ({best})")
    axes[0].legend()
    fig.tight_layout()
    return fig
