"""The ``vaetools`` command line."""

from __future__ import annotations

import contextlib
import errno
import math
import os
from pathlib import Path

import click

from vaetools_pipelines.interrupts import Interrupted, command_line
from vae_tools import __version__
from vae_tools.config import DEFAULT_EPOCHS, TrainConfig, parse_set_option
from vae_tools.data import SOURCE_HELP
from vae_tools.errors import VaeToolsError
from vae_tools.models import list_models
from vae_tools.models.defaults import LATENT_DIM, PHOTO_LATENT_DIM
from vae_tools.anomaly.defaults import SAMPLES, SCORE, SCORES
from vae_tools.latent.defaults import (ENSEMBLE_LIMIT, ENSEMBLE_MAPS, FEATURE_SETS, FEATURES, JUDGE_FOLDS, MAPS,
                                       MIN_JUDGING_LABELS, REDUCE, REDUCTIONS, REFINE_EPOCHS, REFINE_ROUNDS, UMAP_BACKEND,
                                       UMAP_BACKENDS)


class SafeCommand(click.Command):
    """Checks, before any work, that --out cannot overwrite what the command reads."""

    def invoke(self, ctx):
        from vaetools_pipelines.safe_paths import check_command_paths

        if int(os.environ.get("WORLD_SIZE", "1")) > 1 and ctx.command.name not in DISTRIBUTED_COMMANDS:
            raise click.ClickException(f"{ctx.info_name} runs in one process; of the commands, only "
                                       f"{' and '.join(DISTRIBUTED_COMMANDS)} run under torchrun")

        check_command_paths(ctx.params, ctx.command.name)
        if ctx.params.get("out") is None or ctx.command.name in PIPELINE_COMMANDS or os.environ.get("RANK", "0") != "0":
            return super().invoke(ctx)
        from vaetools_pipelines.run_lock import output_lock

        with output_lock(Path(ctx.params["out"])):
            return super().invoke(ctx)


DISTRIBUTED_COMMANDS = ("train", "embed", "anomalies", "denoise")
PIPELINE_COMMANDS = ("run", "chain", "demo")  # they lock their run folder themselves


@contextlib.contextmanager
def process_group(device):
    """Under torchrun: join its process group for the command, and leave it after. Returns whether
    this process writes the outputs (only the first one does)."""
    from vae_tools.training import distributed

    distributed.start_from_environment(device or "auto")
    finished = False
    try:
        yield distributed.is_main_process()
        finished = True
    except Exception as exc:
        if distributed.world_size() > 1 and collective_failed(exc):
            # The process that failed printed the reason; this one only lost its partner.
            raise click.ClickException(f"process {distributed.rank()} of the torchrun job stops: another process "
                                       "stopped first (its error is above)") from None
        raise
    finally:
        distributed.stop(wait=finished)


def collective_failed(exc: Exception) -> bool:
    """Whether ``exc`` is a collective operation failing because another process has gone."""
    import torch.distributed as dist

    kinds = tuple(k for k in (getattr(dist, "DistError", None),) if k is not None)
    text = str(exc).lower()
    return isinstance(exc, kinds) or (isinstance(exc, RuntimeError) and any(
        word in text for word in ("gloo", "nccl", "connection closed", "connection reset", "broken pipe")))


class VaeToolsGroup(click.Group):
    """Turns a user's mistake (VaeToolsError) into one line on stderr and exit status 1."""

    command_class = SafeCommand

    def parse_args(self, ctx, args):
        ctx.meta["vaetools.argv"] = list(args)  # for the line that repeats the command after a Ctrl-C
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            # One line, as for every other mistake: the usage block Click prints adds nothing the
            # line does not say, and --help is named in it.
            where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
            raise OneLineUsageError(exc.format_message() + where) from None
        except VaeToolsError as exc:
            raise click.ClickException(str(exc)) from None
        except KeyboardInterrupt:
            again = command_line(*ctx.meta.get("vaetools.argv", []))
            raise Interrupted(f"interrupted; no file was left half-written; continue with: {again}") from None
        except OSError as exc:  # a write or read the system refused: permission, disk full, name too long...
            raise click.ClickException(os_error_line(exc)) from None


class OneLineUsageError(click.ClickException):
    exit_code = 2  # Click's status for a usage error


OS_ERROR_HINTS = {errno.ENOSPC: "the disk is full", errno.EFBIG: "the file is too large for this system or quota",
                  errno.EACCES: "permission denied", errno.EPERM: "permission denied",
                  errno.ENAMETOOLONG: "the name is too long", errno.EISDIR: "it is a folder, not a file",
                  errno.ENOTDIR: "a part of the path is a file, not a folder", errno.EROFS: "the file system is read-only",
                  errno.EDQUOT: "the disk quota is exceeded"}


def os_error_line(exc: OSError) -> str:
    where = exc.filename or "a file"
    cause = OS_ERROR_HINTS.get(exc.errno, exc.strerror or str(exc))
    return f"{where}: {cause}; no file was left half-written"


class FiniteFloat(click.ParamType):
    """A number that is neither NaN nor infinite (JSON, thresholds and fractions need real numbers),
    optionally inside bounds, each open (excluded) or closed."""

    name = "number"

    def __init__(self, low=None, high=None, open_low=False, open_high=False):
        self.low, self.high, self.open_low, self.open_high = low, high, open_low, open_high

    def convert(self, value, param, ctx):
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        below = self.low is not None and (number <= self.low if self.open_low else number < self.low)
        above = self.high is not None and (number >= self.high if self.open_high else number > self.high)
        if below or above:
            self.fail(f"{value!r} is not in {self._range_text()}", param, ctx)
        return number

    def _range_text(self) -> str:
        left = "(" if self.open_low or self.low is None else "["
        right = ")" if self.open_high or self.high is None else "]"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        return f"the range {left}{low}, {high}{right}"


FINITE = FiniteFloat()


def parse_maps(ctx, param, value):
    if value is None or str(value).lower() == "auto":
        return "auto"
    try:
        count = int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}: use auto or a whole number such as 1 or 5") from None
    if count < 1:
        raise click.BadParameter(f"{value!r}: at least one map is needed")
    return count


MAX_IMAGE_SIDE = 4096  # a 4096x4096 RGB image is 200 MB as float32; larger sides are almost surely a typo


def parse_image_size(value):
    if value is None:
        return None
    text = str(value).lower()
    try:
        parts = [int(v) for v in text.split("x")]
    except ValueError:
        raise click.BadParameter(f"{value!r}: use one number (28) or HEIGHTxWIDTH (28x32)") from None
    if len(parts) not in (1, 2) or min(parts) < 4:
        raise click.BadParameter(f"{value!r}: use one number (28) or HEIGHTxWIDTH (28x32), each at least 4")
    if max(parts) > MAX_IMAGE_SIDE:
        gigabytes = max(parts) ** 2 * 4 / 1e9
        raise click.BadParameter(f"{value!r}: at most {MAX_IMAGE_SIDE} pixels a side (one {max(parts)}-pixel square "
                                 f"grey image alone needs {gigabytes:,.0f} GB as float32)")
    return parts * 2 if len(parts) == 1 else parts


TRAINING = TrainConfig()  # the training defaults --help shows (the options stay unset so a --config preset applies)


def shown_default(name: str) -> str:
    return f"  [default: {getattr(TRAINING, name)}]"


data_option = click.option("--data", "data", required=True, metavar="SOURCE", help=f"The images: {SOURCE_HELP}.")
split_option = click.option("--split", type=click.Choice(["all", "train", "test"]), default="all", show_default=True,
                            help="Which part of a source with a train/test split to use.")
workers_option = click.option("--workers", type=click.IntRange(min=0), default=None,
                              help="Processes decoding image files in parallel (worth it for folders of JPEG/PNG).  [default: 0, decode in this process]")
device_option = click.option("--device", type=click.Choice(["auto", "cpu", "cuda", "mps"]), default=None,
                             help="Where to compute; auto picks CUDA, then MPS, then CPU.  [default: auto]")


@click.group(cls=VaeToolsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vaetools")
def main():
    """Train convolutional and denoising VAEs on images and put their latent space to work.

    Start with `vaetools demo`, then `vaetools train --data SOURCE --out runs/NAME` and
    `vaetools embed --model runs/NAME --data SOURCE --out embeddings.parquet`.
    """


@main.command()
@data_option
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder to create (or continue with --resume).")
@click.option("--architecture", "--model", "model_name", type=click.Choice(["auto", *list_models()]), default=None,
              help="Which network: conv; denoising (trained on corrupted inputs); photo (a residual encoder also "
                   "trained to give crops, flips and colour changes of an image one code: for photographs); auto "
                   "picks photo for continuous-tone images and conv for strokes, and says why. Elsewhere --model "
                   "names a trained run folder; here the older spelling --model still works." + shown_default("model"))
@click.option("--config", default=None, metavar="PRESET|FILE",
              help="A YAML file, or a preset in configs/ (conv, denoising, laptop).")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Maximum epochs (early stopping may end sooner).  [default: enough for "
                   f"{TRAINING.min_steps} steps, at least {DEFAULT_EPOCHS}]")
@click.option("--latent-dim", type=click.IntRange(min=1), default=None,
              help=f"Size of the latent space.  [default: {LATENT_DIM}; {PHOTO_LATENT_DIM} for the photo model]")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Images per step." + shown_default("batch_size"))
@click.option("--lr", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Peak learning rate." + shown_default("lr"))
@click.option("--beta", type=click.FloatRange(min=0), default=None,
              help="Weight of the KL term (beta-VAE)." + shown_default("beta"))
@click.option("--likelihood", type=click.Choice(["auto", "bernoulli", "gaussian"]), default=None,
              help="Pixel model: bernoulli (BCE) for strokes or shapes on a plain background, gaussian (learned "
                   "scale) for continuous-tone images such as photos; auto picks by the share of mid-grey pixels "
                   "and says why." + shown_default("likelihood"))
@click.option("--noise", default=None, metavar="SPEC",
              help="Corruption for --architecture denoising: gaussian:0.5, salt-pepper:0.2, mask:0.5 (pixels), "
                   "block:0.3 (patches) or a comma-separated mix." + shown_default("noise"))
@click.option("--image-size", default=None, metavar="N|HxW", help="Resize every image to this size.")
@click.option("--channels", type=click.Choice(["1", "3"]), default=None, help="Convert images to 1 (grey) or 3 (RGB) channels.")
@split_option
@device_option
@workers_option
@click.option("--seed", type=int, default=None, help="Random seed (split, initialisation, batches)." + shown_default("seed"))
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last completed epoch.")
@click.option("--allow-other-data", is_flag=True,
              help="With --resume: continue on images other than those the run was trained on (refused otherwise).")
@click.option("--set", "set_options", multiple=True, metavar="KEY=VALUE", help="Any other configuration option; repeatable.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train(data, out, model_name, config, epochs, latent_dim, batch_size, lr, beta, likelihood, noise, image_size,
          channels, split, device, workers, seed, resume, allow_other_data, set_options, quiet):
    """Train a VAE on SOURCE and save it as a run folder.

    The folder holds config.json, model.safetensors (best validation weights), the training state
    for --resume, and loss curves (history.csv, loss_curves.png).
    """
    from vaetools_pipelines.train_step import run_train

    overrides = dict(parse_set_option(text) for text in set_options)
    overrides.update({k: v for k, v in dict(
        model=model_name, epochs=epochs, latent_dim=latent_dim, batch_size=batch_size, lr=lr, beta=beta,
        likelihood=likelihood, noise=noise, image_size=parse_image_size(image_size),
        channels=int(channels) if channels else None, device=device, workers=workers, seed=seed).items()
        if v is not None})
    from vae_tools.training.trainer import TrainingInterrupted

    with process_group(device) as writes_outputs:
        try:
            result = run_train(data, out, config=config, overrides=overrides, split=split, resume=resume,
                               allow_other_data=allow_other_data,
                               progress=not quiet)
        except TrainingInterrupted as exc:
            again = command_line("train", "--data", data, "--out", out, "--resume")
            raise Interrupted(f"{exc}; continue with: {again}") from None
    if not writes_outputs:
        return
    best = result.history[result.best_epoch - 1] if result.best_epoch else result.history[-1]
    val = best["train_loss"] if math.isnan(best["val_loss"]) else best["val_loss"]
    from vae_tools.run_folder import read_run_config

    click.echo(f"trained {len(result.history)} epochs; best epoch {result.best_epoch} "
               f"(negative ELBO {val:.2f} nats/image); run folder: {out}")
    for name, choice in read_run_config(out).get("choices", {}).items():
        if isinstance(choice, dict) and choice.get("why") and choice.get("automatic", True):
            click.echo(f"{name.replace('_', ' ')}: {choice['why']}")


@main.command()
@click.option("--model", "model_dir", required=True, type=click.Path(), help="A run folder written by `vaetools train`.")
@data_option
@click.option("--out", required=True, type=click.Path(),
              help="Table to write: .parquet, .csv or .npz (chosen by extension).")
@split_option
@click.option("--logvar", is_flag=True, help="Also write the posterior log-variances logvar_*.")
@click.option("--elbo", is_flag=True, help="Also write the per-sample negative ELBO and its terms (recon_nll, kl).")
@click.option("--elbo-samples", type=click.IntRange(min=1), default=1, show_default=True,
              help="Monte Carlo samples of z for --elbo.")
@click.option("--batch-size", type=click.IntRange(min=1), default=512, show_default=True)
@click.option("--partitioned", is_flag=True,
              help="Write --out NAME.parquet as a folder of parts, one per process (part-00000.parquet, ...): under "
                   "torchrun no process then holds the whole table. pandas.read_parquet reads the folder as one table.")
@device_option
@workers_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
def embed(model_dir, data, out, split, logvar, elbo, elbo_samples, batch_size, partitioned, device, workers, quiet):
    """Encode SOURCE with a trained VAE: one row per sample with id, label and mu_0..mu_{d-1}."""
    from vaetools_pipelines.embed_step import run_embed

    with process_group(device) as writes_outputs:
        rows = run_embed(model_dir, data, out, split=split, logvar=logvar, elbo=elbo, elbo_samples=elbo_samples,
                         batch_size=batch_size, device=device or "auto", progress=not quiet, write=writes_outputs,
                         workers=workers or 0, partitioned=partitioned)
    if writes_outputs:
        click.echo(f"wrote {rows} rows to {out}" + (" (one part per process)" if partitioned else ""))


def latent_source_options(func):
    """--embeddings, or --model with --data: where a latent-space step gets its latents."""
    options = [
        click.option("--embeddings", type=click.Path(), default=None,
                     help="An embeddings table from `vaetools embed` (.parquet, .csv, .npz, or a partitioned "
                          ".parquet folder)."),
        click.option("--model", "model_dir", type=click.Path(), default=None,
                     help="A run folder from `vaetools train`; with --data the images are encoded now."),
        click.option("--data", "data", default=None, metavar="SOURCE",
                     help="The images (needed with --model; with --embeddings, for thumbnails only)."),
        split_option, device_option,
    ]
    for option in reversed(options):
        func = option(func)
    return func


umap_backend_option = click.option(
    "--backend", "backend", type=click.Choice(UMAP_BACKENDS), default=UMAP_BACKEND, show_default=True,
    help="Who computes the UMAP map: umap-learn (CPU, reproducible for a seed) or cuml (RAPIDS on an NVIDIA "
         "GPU, for millions of points).")


@main.command("label-propagate")
@latent_source_options
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the outputs.")
@click.option("--labelled", "--labeled", "labeled", type=FINITE, default=None, metavar="FRACTION",
              help="Evaluation mode: keep this random fraction of the data's labels (e.g. 0.02) and predict the rest.")
@click.option("--labels", "labels_file", type=click.Path(dir_okay=False), default=None,
              help="Real use: a CSV/Parquet table of id,label for the samples you have labelled.")
@click.option("--stratify", is_flag=True, help="With --labelled: keep the same fraction of every class.")
@click.option("--method", type=click.Choice(["spreading", "centroids", "knn"]), default="spreading", show_default=True,
              help="spreading: label spreading over the neighbour graph; centroids: k-means seeded by the "
                   "labelled points; knn: nearest labelled neighbours.")
@click.option("--neighbors", "n_neighbors", type=click.IntRange(min=1), default=15, show_default=True,
              help="Neighbours per sample in the graph.")
@click.option("--graph", type=click.Choice(["umap", "knn"]), default="umap", show_default=True,
              help="Edge weights: UMAP's fuzzy membership, or plain 0/1.")
@click.option("--reduce", type=click.Choice(REDUCTIONS), default=REDUCE, show_default=True,
              help="Build the graph on a 10-d UMAP map of the features (much more accurate on every data set "
                   "measured), or on the features themselves; auto: UMAP up to 200,000 samples (it is slow beyond).")
@click.option("--features", type=click.Choice(FEATURE_SETS), default=FEATURES,
              show_default=True,
              help="What the graph is built on. auto: whichever of latents, latents+pixels (principal "
                   "components) and pixels scores best in a 5-fold cross-validation on your labels; the "
                   "pixels need --data.")
@umap_backend_option
@click.option("--maps", "n_maps", default=MAPS, show_default=True, callback=parse_maps, metavar="auto|N",
              help="UMAP maps of different seeds to propagate over, their results averaged, so that the "
                   "result does not hang on one map's seed (up to a point of accuracy on small data sets). "
                   f"auto: {ENSEMBLE_MAPS} up to {ENSEMBLE_LIMIT:,} samples, 1 beyond (each map costs a UMAP run).")
@click.option("--refine-rounds", type=click.IntRange(min=0), default=None,
              help="Rounds of fine-tuning the VAE on the propagated labels, then propagating again "
                   "(needs --model and --data). Each round is also run once per fold of your labels "
                   f"({JUDGE_FOLDS} folds) without that fold, and kept only if it then predicts more of the "
                   f"labels held back correctly; with fewer than {MIN_JUDGING_LABELS} labels that cannot be "
                   f"judged, and it is skipped.  [default: {REFINE_ROUNDS} with --model, else 0]")
@click.option("--refine-epochs", type=click.IntRange(min=1), default=REFINE_EPOCHS, show_default=True,
              help="Epochs over the data per refinement round.")
@click.option("--suggest", type=click.IntRange(min=0), default=0, metavar="N",
              help="Also write the N unlabelled samples most worth labelling next (suggestions.csv/.png).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def label_propagate(embeddings, model_dir, data, split, device, out, labeled, labels_file, stratify, method,
                    n_neighbors, graph, reduce, features, backend, n_maps, refine_rounds, refine_epochs, suggest, seed,
                    quiet):
    """Predict a label for every sample from a few labelled ones.

    Writes predictions.csv (id, predicted_label, confidence, labelled, true_label when known),
    metrics.json (accuracy on the unlabelled, per-class accuracy, macro F1, confusion matrix) and
    confusion.png when the truth is known.
    """
    from vaetools_pipelines.label_propagate_step import run_label_propagate

    metrics = run_label_propagate(out, embeddings, model_dir, data, labeled=labeled, labels_file=labels_file,
                                  stratify=stratify, method=method, n_neighbors=n_neighbors, graph=graph,
                                  reduce=reduce, features=features, backend=backend, n_maps=n_maps,
                                  refine_rounds=refine_rounds,
                                  refine_epochs=refine_epochs, suggest=suggest,
                                  split=split, device=device or "auto", seed=seed, progress=not quiet)
    accuracy = metrics.get("accuracy_unlabelled")
    scored = f"; accuracy on the unlabelled {accuracy:.2%}" if accuracy is not None else ""
    click.echo(f"features: {metrics['choices']['features']} ({metrics['choices']['features_why']}); "
               f"refinement: {metrics['choices']['refinement']}")
    click.echo(f"labelled {metrics['n_unlabelled']} samples from {metrics['n_labelled']} labels{scored}; "
               f"outputs in {out}")


@main.command()
@latent_source_options
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the outputs.")
@click.option("--method", type=click.Choice(["kmeans", "gmm", "hdbscan"]), default="kmeans", show_default=True,
              help="kmeans, a Gaussian mixture, or HDBSCAN (finds the number of clusters; -1 = noise).")
@click.option("--clusters", "n_clusters", type=click.IntRange(min=1), default=10, show_default=True,
              help="Number of clusters (kmeans, gmm).")
@click.option("--reduce", type=click.Choice(["umap", "none"]), default="umap", show_default=True,
              help="Map the latents to 10 dimensions with UMAP first (tighter, better separated clusters), or not.")
@click.option("--features", type=click.Choice(FEATURE_SETS), default=FEATURES, show_default=True,
              help="What to cluster: the latents, the images' first 50 principal components (pixels), or both; "
                   "auto (needs --data and --reduce umap) clusters each and keeps the one whose clusters are best "
                   "separated (highest silhouette), as no labels can judge.")
@umap_backend_option
@click.option("--min-cluster-size", type=click.IntRange(min=2), default=None,
              help="HDBSCAN's smallest cluster.  [default: 1% of the samples, at least 5]")
@click.option("--examples", type=click.IntRange(min=0), default=10, show_default=True,
              help="Thumbnails per cluster in cluster_examples.png (needs --data).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def cluster(embeddings, model_dir, data, split, device, out, method, n_clusters, reduce, features, backend,
            min_cluster_size, examples, seed, quiet):
    """Cluster the latents: clusters.csv, metrics.json (accuracy, NMI, ARI when labels are known)
    and cluster_examples.png."""
    from vaetools_pipelines.cluster_step import run_cluster

    metrics = run_cluster(out, embeddings, model_dir, data, method=method, n_clusters=n_clusters, reduce=reduce,
                          features=features, backend=backend,
                          min_cluster_size=min_cluster_size, examples=examples, split=split,
                          device=device or "auto", seed=seed, progress=not quiet)
    scored = f"; accuracy {metrics['accuracy']:.2%}, NMI {metrics['nmi']:.3f}" if "accuracy" in metrics else ""
    click.echo(f"features: {metrics['features']} ({metrics['features_why']})")
    click.echo(f"{metrics['n_clusters']} clusters over {metrics['n_samples']} samples{scored}; outputs in {out}")


@main.command()
@latent_source_options
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the outputs.")
@click.option("--colour-by", "--color-by", "colour_by", multiple=True, metavar="COLUMN",
              help="Also colour by this column (repeatable): a column of a --join table such as "
                   "predicted_label, cluster, or neg_elbo. The true label is always drawn when known.")
@click.option("--join", multiple=True, type=click.Path(dir_okay=False), metavar="TABLE",
              help="A table keyed by id whose columns can colour the map (predictions.csv, clusters.csv, ...).")
@click.option("--neighbors", "n_neighbors", type=click.IntRange(min=2), default=15, show_default=True)
@click.option("--min-dist", type=click.FloatRange(min=0), default=0.1, show_default=True)
@click.option("--thumbnails", "n_thumbnails", type=click.IntRange(min=0), default=150, show_default=True,
              help="Images drawn at their positions in umap_thumbnails.png (needs --data).")
@umap_backend_option
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bars.")
def umap(embeddings, model_dir, data, split, device, out, colour_by, join, n_neighbors, min_dist, n_thumbnails, backend,
         seed, quiet):
    """A 2-D UMAP of the latents: umap.csv, umap_<column>.png/.svg and umap_thumbnails.png."""
    from vaetools_pipelines.umap_step import run_umap

    summary = run_umap(out, embeddings, model_dir, data, colour_by=colour_by, join=join, n_neighbors=n_neighbors,
                       min_dist=min_dist, n_thumbnails=n_thumbnails, split=split, device=device or "auto",
                       seed=seed, progress=not quiet, backend=backend)
    click.echo(f"mapped {summary['n_samples']} samples: {', '.join(summary['files'])} in {out}")


@main.command()
@click.option("--model", "model_dir", required=True, type=click.Path(),
              help="A run folder from `vaetools train` (best: --model denoising with the noise you have).")
@data_option
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the outputs.")
@click.option("--reference", default=None, metavar="CLEAN_SOURCE",
              help="The clean images, same count and size, in the same order: adds metrics.json (PSNR, SSIM).")
@click.option("--add-noise", default=None, metavar="SPEC",
              help="Corrupt the (clean) data first, e.g. gaussian:0.5, salt-pepper:0.2, mask:0.5, block:0.3; "
                   "the clean data is then the reference.")
@split_option
@click.option("--batch-size", type=click.IntRange(min=1), default=512, show_default=True)
@click.option("--examples", "n_examples", type=click.IntRange(min=1, max=32), default=8, show_default=True,
              help="Columns of comparison.png.")
@device_option
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of --add-noise.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def denoise(model_dir, data, out, reference, add_noise, split, batch_size, n_examples, device, seed, quiet):
    """Clean noisy images with a trained VAE.

    Writes the cleaned images in the form they came in (a folder gives OUT/images/ with the same
    file names and formats; an .npy gives denoised.npy; other sources give denoised.npz) and
    comparison.png. With --reference or --add-noise also metrics.json (mean PSNR and SSIM before
    and after) and quality_per_image.csv.
    """
    from vaetools_pipelines.denoise_step import run_denoise

    with process_group(device) as writes_outputs:
        summary = run_denoise(model_dir, data, out, reference=reference, add_noise=add_noise, split=split,
                              batch_size=batch_size, n_examples=n_examples, device=device or "auto", seed=seed,
                              progress=not quiet and writes_outputs, write=writes_outputs)
    if not writes_outputs:
        return
    scored = ""
    if "psnr_db" in summary:
        scored = (f"; PSNR {summary['psnr_db']['before']:.2f} -> {summary['psnr_db']['after']:.2f} dB, "
                  f"SSIM {summary['ssim']['before']:.3f} -> {summary['ssim']['after']:.3f}")
    click.echo(f"denoised {summary['n_images']} images into {Path(out) / summary['output']}{scored}")


def comma_list(ctx, param, value):
    return [v.strip() for v in value.split(",") if v.strip()] if value else []


@main.command()
@click.option("--model", "model_dir", required=True, type=click.Path(),
              help="A run folder from `vaetools train`, trained on normal images.")
@data_option
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the outputs.")
@click.option("--score", type=click.Choice(SCORES), default=SCORE, show_default=True,
              help="adjusted: importance-weighted -log p(x) minus the part of it that the image's complexity "
                   "explains, weighted by a slope fitted on the data (robust to simple and to complex normal images); "
                   "complexity: the same with weight 1, where complexity is the image's -log-likelihood under a "
                   "generic background model that predicts each pixel from its neighbours; "
                   "iwae: importance-weighted -log p(x); elbo: negative ELBO; recon / kl: its two terms; "
                   "latent: low density of the latent code.")
@click.option("--samples", type=click.IntRange(min=1), default=SAMPLES, show_default=True,
              help="Monte Carlo samples of z per image (elbo, iwae, complexity, adjusted).")
@click.option("--contamination", type=FiniteFloat(0, 1, open_low=True, open_high=True), default=None,
              help="Expected share of anomalies (e.g. 0.01): flag that share of the highest scores.")
@click.option("--percentile", type=FiniteFloat(0, 100, open_low=True, open_high=True), default=None, help="Flag scores above this percentile (0-100).")
@click.option("--threshold", type=FINITE, default=None, help="Flag scores above this value.")
@click.option("--normal-labels", callback=comma_list, default=None, metavar="L1,L2",
              help="Ground truth: these labels are normal, all others anomalies (adds AUROC, AP, F1).")
@click.option("--anomaly-labels", callback=comma_list, default=None, metavar="L1,L2",
              help="Ground truth: these labels are the anomalies.")
@click.option("--top", type=click.IntRange(min=1), default=24, show_default=True,
              help="Anomalies shown in report.html (top_anomalies.png shows up to 12).")
@click.option("--plant", type=click.IntRange(min=0, max=10_000), default=0, show_default=True, metavar="N",
              help="A check without labelled anomalies: add N synthetic outliers (inverted copies of images and "
                   "uniform noise) and report how many are flagged and their AUROC against the data. The "
                   "threshold is set on the data alone; the data is then held in memory.")
@split_option
@click.option("--batch-size", type=click.IntRange(min=1), default=256, show_default=True)
@device_option
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quiet", is_flag=True, help="No progress bar.")
def anomalies(model_dir, data, out, score, samples, contamination, percentile, threshold, normal_labels,
              anomaly_labels, top, plant, split, batch_size, device, seed, quiet):
    """Score every image by how badly the VAE explains it and report the worst.

    Without --contamination/--percentile/--threshold the cut is automatic: median + 3.5 robust
    standard deviations (MAD) of the scores, which needs no labelled anomalies. Writes
    anomalies.csv/.parquet (id, score, rank, is_anomaly, label, score parts), metrics.json,
    top_anomalies.png and report.html (self-contained; open it in any browser).
    """
    from vaetools_pipelines.anomalies_step import run_anomalies

    with process_group(device) as writes_outputs:
        metrics = run_anomalies(model_dir, data, out, score=score, samples=samples, contamination=contamination,
                                percentile=percentile, threshold=threshold, normal_labels=normal_labels,
                                anomaly_labels=anomaly_labels, top=top, plant=plant, split=split,
                                batch_size=batch_size, device=device or "auto", seed=seed,
                                progress=not quiet and writes_outputs, write=writes_outputs)
    if not writes_outputs:
        return
    truth = metrics.get("truth") or {}
    scored = f"; AUROC {truth['auroc']:.4f}" if truth.get("auroc") is not None else ""
    if plant:
        scored += (f"; planted outliers: {metrics['planted']['flagged']} of {plant} flagged, AUROC "
                   f"{metrics['planted']['auroc_against_the_data']:.4f}")
    click.echo(f"{metrics['n_anomalies']} of {metrics['n_images']} images flagged (threshold "
               f"{metrics['threshold']['value']:.4g}, {metrics['threshold']['method']}){scored}; "
               f"report: {Path(out) / 'report.html'}")
    if score == "adjusted":
        click.echo(f"complexity weight {metrics['background_weight']:.2f}: "
                   f"{metrics['choices']['background_weight']['why']}")


model_run_option = click.option("--model", "model_dir", required=True, type=click.Path(),
                                help="A run folder written by `vaetools train` (or a pipeline's run folder).")
quiet_option = click.option("--quiet", is_flag=True, help="No progress bars.")
seed_option = click.option("--seed", type=int, default=0, show_default=True,
                           help="Random seed: the same seed gives the same pictures.")


def optional_data_option(purpose: str):
    return click.option("--data", "data", default=None, metavar="SOURCE", help=f"Images to {purpose}: {SOURCE_HELP}.")


@main.command()
@model_run_option
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the outputs.")
@click.option("--n", type=click.IntRange(min=1, max=10_000), default=64, show_default=True, help="Images to draw.")
@click.option("--sampler", type=click.Choice(["gmm", "prior"]), default="gmm", show_default=True,
              help="gmm: codes from a Gaussian mixture fitted to the latent codes of the training images (they "
                   "land where the decoder was trained: sharper images); prior: codes from N(0, I).")
@click.option("--temperature", type=FiniteFloat(0, 10), default=1.0, show_default=True,
              help="Spread of the codes: below 1 gives typical, cleaner images; above 1 more varied, stranger ones.")
@optional_data_option("fit the mixture to instead of the training images")
@split_option
@device_option
@seed_option
@quiet_option
def sample(model_dir, out, n, sampler, temperature, data, split, device, seed, quiet):
    """Generate new images: samples.png (a grid), samples.npz (x: 8-bit images, z: their codes),
    images/ (one PNG each) and summary.json."""
    from vaetools_pipelines.sample_step import run_sample

    summary = run_sample(model_dir, out, n=n, sampler=sampler, temperature=temperature, data=data, split=split,
                         device=device or "auto", seed=seed)
    click.echo(f"drew {n} images from {summary['codes_from']}; grid: {Path(out) / 'samples.png'}")


def id_list(ctx, param, value):
    """Repeated options, each possibly a comma-separated list."""
    return [part.strip() for item in value or () for part in str(item).split(",") if part.strip()]


@main.command()
@model_run_option
@data_option
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the outputs.")
@click.option("--n", type=click.IntRange(min=1, max=10_000), default=32, show_default=True,
              help="Random images to reconstruct (without --images).")
@click.option("--images", "ids", multiple=True, callback=id_list, metavar="ID",
              help="Reconstruct these images (ids as in `vaetools embed`'s table); repeatable or comma-separated.")
@split_option
@device_option
@seed_option
@quiet_option
def reconstruct(model_dir, data, out, n, ids, split, device, seed, quiet):
    """Images beside their reconstructions (decoded from the posterior mean): reconstructions.png,
    reconstructions.npz (x, reconstructed, ids) and reconstructions.csv (MSE, PSNR, SSIM per image)."""
    from vaetools_pipelines.reconstruct_step import run_reconstruct

    summary = run_reconstruct(model_dir, data, out, n=n, ids=ids, split=split, device=device or "auto", seed=seed)
    click.echo(f"reconstructed {summary['n_images']} images (mean PSNR {summary['mean_psnr_db']:.2f} dB, "
               f"SSIM {summary['mean_ssim']:.3f}); outputs in {out}")


@main.command()
@model_run_option
@data_option
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the outputs.")
@click.option("--between", nargs=2, multiple=True, metavar="ID_A ID_B",
              help="Interpolate between these two images; repeatable.  [default: --pairs random pairs]")
@click.option("--pairs", type=click.IntRange(min=1, max=100), default=4, show_default=True,
              help="Random pairs (of different labels where the data has labels) without --between.")
@click.option("--steps", type=click.IntRange(min=2, max=64), default=10, show_default=True,
              help="Decoded points on each path, both ends included.")
@split_option
@device_option
@seed_option
@quiet_option
def interpolate(model_dir, data, out, between, pairs, steps, split, device, seed, quiet):
    """Walk the latent space between two images, spherically (slerp) and in a straight line.

    Writes pair_NN.png for each pair, interpolations.png (all pairs), interpolations.npz and
    pairs.csv. Slerp keeps the path at the norm typical of codes; the straight line dips
    through the middle, where images often fade.
    """
    from vaetools_pipelines.interpolate_step import run_interpolate

    summary = run_interpolate(model_dir, data, out, between=between, pairs=pairs, steps=steps, split=split,
                              device=device or "auto", seed=seed)
    click.echo(f"interpolated {summary['n_pairs']} pairs in {steps} steps; outputs in {out}")


def dims_list(ctx, param, value):
    try:
        return [int(part) for part in id_list(ctx, param, value)]
    except ValueError:
        raise click.BadParameter(f"{', '.join(value)}: give latent dimensions as whole numbers, e.g. 0,3,5") from None


@main.command()
@model_run_option
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the outputs.")
@click.option("--dims", multiple=True, callback=dims_list, metavar="J",
              help="Dimensions to show, in this order; repeatable or comma-separated.  "
                   "[default: the active ones (KL at least 0.01 nats), most informative first, at most 16]")
@click.option("--steps", type=click.IntRange(min=2, max=64), default=11, show_default=True, help="Images per row.")
@click.option("--range", "span", type=FiniteFloat(0, 100, open_low=True), default=3.0, show_default=True,
              help="Each dimension goes from -RANGE to +RANGE (prior standard deviations).")
@optional_data_option("measure each dimension's KL on, instead of the training images")
@split_option
@device_option
@seed_option
@quiet_option
def traverse(model_dir, out, dims, steps, span, data, split, device, seed, quiet):
    """Decode one latent dimension at a time: traverse.png (a row per dimension, the others held
    at 0), traverse.npz, dimensions.csv (each dimension's KL; inactive ones carry nothing) and, for
    a 2-d latent space, manifold.png (the classic grid)."""
    from vaetools_pipelines.traverse_step import run_traverse

    summary = run_traverse(model_dir, out, dims=dims, steps=steps, span=span, data=data, split=split,
                           device=device or "auto", seed=seed)
    click.echo(f"{summary['n_active']} of {summary['latent_dim']} dimensions are active; showed "
               f"{', '.join(map(str, summary['dims']))} in {Path(out) / 'traverse.png'}")


@main.command()
@model_run_option
@data_option
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the outputs.")
@click.option("--from", "source", required=True, metavar="LABEL", help="The label to move away from.")
@click.option("--to", "target", required=True, metavar="LABEL", help="The label to move towards.")
@click.option("--images", "ids", multiple=True, callback=id_list, metavar="ID",
              help="Images to move; repeatable or comma-separated.  [default: --n random images of the --from label]")
@click.option("--n", type=click.IntRange(min=1, max=100), default=4, show_default=True,
              help="Random images of the --from label without --images.")
@click.option("--steps", type=click.IntRange(min=2, max=64), default=6, show_default=True)
@click.option("--strength", type=FiniteFloat(-100, 100), default=1.0, show_default=True,
              help="How far to go: 1 moves by the whole difference of the two mean codes.")
@split_option
@device_option
@seed_option
@quiet_option
def attribute(model_dir, data, out, source, target, ids, n, steps, strength, split, device, seed, quiet):
    """Move images along an attribute vector: the mean code of the --to label minus that of the
    --from label (the labels of SOURCE). Writes attribute.png, attribute.npz and summary.json."""
    from vaetools_pipelines.attribute_step import run_attribute

    summary = run_attribute(model_dir, data, out, source, target, images=ids, n=n, steps=steps, strength=strength,
                            split=split, device=device or "auto", seed=seed, progress=not quiet)
    counts = summary["images_per_label"]
    click.echo(f"vector from the mean of {counts[str(source)]} '{source}' images to {counts[str(target)]} "
               f"'{target}' images (norm {summary['vector_norm']:.2f}); moved {len(summary['ids'])} images: "
               f"{Path(out) / 'attribute.png'}")


def step_commands() -> dict:
    from vaetools_pipelines.steps import LAYOUT

    return {name: layout.command or main.commands[name] for name, layout in LAYOUT.items()}


def pipeline_file(name_or_path: str) -> Path:
    """A YAML file, or a ready-made pipeline in configs/pipelines/ (demo, semi-supervised, ...)."""
    from vae_tools.config import presets_dir

    path = Path(name_or_path)
    if path.is_file():
        return path
    ready = presets_dir() / "pipelines" / f"{name_or_path}.yaml"
    if ready.is_file():
        return ready
    available = ", ".join(sorted(p.stem for p in (presets_dir() / "pipelines").glob("*.yaml")))
    raise VaeToolsError(f"{name_or_path}: no such pipeline file or ready-made pipeline ({available})")


@contextlib.contextmanager
def continued_by(again: str):
    """Ctrl-C outside a step (while the pipeline is read or checked) still says how to go on."""
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted before a step started; continue with: {again}") from None


def finish(state: dict, run: Path) -> None:
    total = sum(step.get("seconds", 0) for name, step in state["steps"].items()
                if name in state["order"] and not step.get("skipped"))
    click.echo(f"done in {total:.0f}s; open {run / 'index.html'}")


@main.command()
@click.argument("pipeline", metavar="PIPELINE.yaml")
@click.option("--set", "set_options", multiple=True, metavar="KEY=VALUE",
              help="Override: data=mnist, name=big, or STEP.OPTION=VALUE such as train.epochs=5; repeatable.")
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Run folder.  [default: runs/<the pipeline's name>]")
@click.option("--force", is_flag=True, help="Rerun every step, even those that have not changed.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def run(pipeline, set_options, out, force, quiet):
    """Run the steps listed in PIPELINE.yaml into one run folder.

    PIPELINE.yaml names the data and the steps with their options, e.g.

    \b
        data: digits
        steps:
          - train: {epochs: 60}
          - embed
          - label-propagate: {labelled: 0.05}
          - umap

    Options are the sub-commands' own (see `vaetools STEP --help`); the run folder supplies
    --model, --data, --embeddings and --out. Ready-made pipelines: demo, semi-supervised,
    anomaly-audit, denoising. Steps whose inputs and options are unchanged since they last
    succeeded are skipped; after a failure, running again continues from the failed step.
    """
    from vaetools_pipelines.runner import load_pipeline, run_pipeline

    again = command_line("run", pipeline, *(w for s in set_options for w in ("--set", s)),
                         *(["--out", out] if out else []), *(["--quiet"] if quiet else []))
    with continued_by(again):
        spec = load_pipeline(pipeline_file(pipeline), set_options, out)
        state = run_pipeline(spec, step_commands(), force=force, quiet=quiet, again=again)
    finish(state, spec.out)


@main.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True,
                                "allow_interspersed_args": False})  # chain's own options come before the steps
@data_option
@click.option("--out", default="runs/chain", show_default=True, type=click.Path(file_okay=False), help="Run folder.")
@click.option("--force", is_flag=True, help="Rerun every step, even those that have not changed.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.argument("steps", nargs=-1, type=click.UNPROCESSED)
def chain(data, out, force, quiet, steps):
    """Run steps in order without a pipeline file, each followed by its own options:

    \b
        vaetools chain --data digits train --epochs 30 embed \\
            label-propagate --labelled 0.02 umap anomalies

    The same run folder layout, skipping and resuming as `vaetools run`.
    """
    from vaetools_pipelines.runner import Pipeline, run_pipeline, split_chain

    again = command_line("chain", "--data", data, "--out", out, *(["--quiet"] if quiet else []), *steps)
    with continued_by(again):
        spec = Pipeline(data, Path(out), split_chain(list(steps)), "vaetools chain " + " ".join(steps))
        state = run_pipeline(spec, step_commands(), force=force, quiet=quiet, again=again)
    finish(state, spec.out)


@main.command()
@click.option("--out", default="runs/demo", show_default=True, type=click.Path(file_okay=False), help="Run folder.")
@click.option("--force", is_flag=True, help="Rerun every step, even those that have not changed.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def demo(out, force, quiet):
    """Every step on the built-in digits set (offline): train, embed, label-propagate, cluster,
    umap, anomalies (with 20 planted outliers as a check), denoise, sample, reconstruct,
    interpolate, traverse; ends by printing where the index page is."""
    from vaetools_pipelines.runner import load_pipeline, run_pipeline

    again = command_line("demo", "--out", out, *(["--quiet"] if quiet else []))
    with continued_by(again):
        spec = load_pipeline(pipeline_file("demo"), out=out)
        state = run_pipeline(spec, step_commands(), force=force, quiet=quiet, again=again)
    finish(state, spec.out)


if __name__ == "__main__":
    main()
