"""Scale: images per second of training and embedding on one or more processes, and of decoding an
image folder with and without DataLoader workers.

    python bench/scale.py --part cpu   # 1 and 2 gloo processes under torchrun; 20,000 PNGs, 0 and 2 workers
    python bench/scale.py --part gpu   # one CUDA GPU: train and embed images/s, 1,000,000 images end to end
    python bench/scale.py --part latents [--n-latents 5000000]   # kNN graph + propagation, time and peak memory

Data are synthetic 28x28 grey images (a bar at a random place and angle, plus noise), since speed
does not depend on what the images show and the device machine has no data sets. The baseline of
the GPU part runs in the same process: the loop of pytorch/examples' vae/main.py (a DataLoader over
CPU tensors, a copy to the GPU and a loss.item() every step, Adam) on the same model; see
bench/train_speed.py for that loop.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from vae_tools.config import TrainConfig  # noqa: E402
from vae_tools.data import ImageDataset, load_dataset  # noqa: E402
from vae_tools.data.arrays import ArrayReader  # noqa: E402
from vae_tools.embedding import embed  # noqa: E402
from vae_tools import distributed, train  # noqa: E402
from vae_tools.training.trainer import build_model  # noqa: E402
from vae_tools.device_settings import CPU_BATCH_SIZE  # noqa: E402


def synthetic_images(n: int, size: int = 28, seed: int = 0) -> np.ndarray:
    """uint8 (n, size, size): one bright bar per image at a random offset and angle, on noise."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(np.arange(size), np.arange(size), indexing="ij"), -1).reshape(-1, 2) - size / 2
    out = np.empty((n, size * size), dtype=np.uint8)
    for start in range(0, n, 65536):
        m = min(65536, n - start)
        angle = rng.uniform(0, np.pi, m)
        offset = rng.uniform(-size / 4, size / 4, m)
        distance = grid @ np.stack([np.cos(angle), np.sin(angle)]) - offset  # (pixels, m)
        bar = np.clip(255 * (1.5 - np.abs(distance)), 0, 255).T
        out[start:start + m] = np.maximum(bar, rng.integers(0, 40, (m, size * size))).astype(np.uint8)
    return out.reshape(n, size, size)


def dataset_of(images: np.ndarray) -> ImageDataset:
    return ImageDataset(ArrayReader(images, "synthetic"), np.arange(len(images)).astype(str))


def machine() -> dict:
    info = {"platform": platform.platform(), "cpus": os.cpu_count(), "torch": torch.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


# ---------------------------------------------------------------- CPU: processes and loading workers

def worker(n: int, epochs: int, out: str) -> None:
    """One torchrun process: train, then embed, then (first process only) write the timings."""
    distributed.start_from_environment("cpu")
    data = dataset_of(synthetic_images(n))
    config = TrainConfig(epochs=epochs, batch_size=CPU_BATCH_SIZE, val_fraction=0.0, device="cpu", seed=0)
    result = train(data, config, progress=False)
    distributed.barrier()
    started = time.perf_counter()
    embed(result.model, data, batch_size=1024)
    embed_seconds = time.perf_counter() - started
    if distributed.is_main_process():
        epoch_seconds = [row["seconds"] for row in result.history[1:]]  # the first epoch warms up
        steps = n // config.batch_size
        Path(out).write_text(json.dumps({
            "processes": distributed.world_size(), "epoch_seconds": epoch_seconds,
            "train_images_per_second": steps * config.batch_size / statistics.median(epoch_seconds),
            "embed_seconds": embed_seconds, "embed_images_per_second": n / embed_seconds}))
    distributed.stop()


def cpu_processes(n: int, epochs: int) -> list[dict]:
    rows = []
    threads = max(1, os.cpu_count() or 1)
    for processes in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "result.json"
            # The same cores either way: one process with every thread, or each process with its share.
            env = {**os.environ, "OMP_NUM_THREADS": str(max(1, threads // processes))}
            command = [shutil.which("torchrun", path=str(Path(sys.executable).parent)) or "torchrun",
                       "--standalone", "--nproc-per-node", str(processes), __file__, "--worker",
                       "--images", str(n), "--epochs", str(epochs), "--result", str(out)]
            subprocess.run(command, check=True, env=env, cwd=ROOT, capture_output=True)
            row = json.loads(out.read_text())
            row["threads_per_process"] = int(env["OMP_NUM_THREADS"])
            rows.append(row)
            print(f"  {processes} gloo process(es): train {row['train_images_per_second']:,.0f} img/s, "
                  f"embed {row['embed_images_per_second']:,.0f} img/s", flush=True)
    return rows


def folder_loading(n: int) -> list[dict]:
    from PIL import Image

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, image in enumerate(synthetic_images(n, seed=1)):
            Image.fromarray(image).save(Path(tmp) / f"{i:06d}.png")
        for workers in (0, 2):
            data = load_dataset(tmp)
            started = time.perf_counter()
            data.load_into_memory(1 << 34, workers=workers)
            seconds = time.perf_counter() - started
            rows.append({"workers": workers, "images": n, "seconds": seconds, "images_per_second": n / seconds})
            print(f"  decode {n:,} PNGs with {workers} workers: {n / seconds:,.0f} img/s", flush=True)
    return rows


# ---------------------------------------------------------------- GPU: one device

def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def examples_style_loop(images: torch.Tensor, batch_size: int, epochs: int, device: torch.device) -> list[float]:
    """pytorch/examples vae/main.py's loop, with vaetools' model: DataLoader, .to(device), loss.item()."""
    from torch.utils.data import DataLoader, TensorDataset

    from vae_tools.models.losses import kl_to_standard_normal

    torch.manual_seed(0)
    model = build_model(TrainConfig(likelihood="bernoulli"), tuple(images.shape[1:])).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(images), batch_size=batch_size, shuffle=True)
    seconds = []
    for _ in range(epochs):
        synchronize(device)
        started = time.perf_counter()
        train_loss = 0.0
        for (x,) in loader:
            x = x.to(device)
            optimizer.zero_grad()
            out = model(x)
            loss = (model.reconstruction_nll(out.decoded, x) + kl_to_standard_normal(out.mu, out.logvar)).sum()
            loss.backward()
            train_loss += loss.item()
            optimizer.step()
        synchronize(device)
        seconds.append(time.perf_counter() - started)
    return seconds


GPU_VARIANTS = ({"amp": False, "compile": False}, {"amp": True, "compile": False}, {"amp": False, "compile": True})


def gpu_training(n: int, epochs: int, batch_sizes: list[int], device: str = "cuda") -> list[dict]:
    device = torch.device(device)
    data = dataset_of(synthetic_images(n))
    data.load_into_memory(1 << 34)
    images = data.batch(np.arange(n))
    rows = []
    for batch_size in batch_sizes:
        baseline = examples_style_loop(images, batch_size, epochs, device)[1:]
        base_rate = n / statistics.median(baseline)
        for variant in GPU_VARIANTS:
            config = TrainConfig(epochs=epochs, batch_size=batch_size, val_fraction=0.0, device=device.type,
                                 seed=0, **variant)
            history = train(data, config, progress=False).history
            seconds = [row["seconds"] for row in history[1:]]
            steps = n // batch_size
            rate = steps * batch_size / statistics.median(seconds)
            rows.append({"batch_size": batch_size, **variant, "epoch_seconds": seconds,
                         "images_per_second": rate, "examples_loop_epoch_seconds": baseline,
                         "examples_loop_images_per_second": base_rate, "speedup_over_examples_loop": rate / base_rate,
                         "final_train_loss": history[-1]["train_loss"]})
            print(f"  train batch {batch_size}, bf16 {variant['amp']}, compile {variant['compile']}: {rate:,.0f} img/s "
                  f"(examples-style loop {base_rate:,.0f} img/s, x{rate / base_rate:.1f})", flush=True)
    return rows


def gpu_embedding(n: int, batch_size: int, device: str = "cuda") -> dict:
    device = torch.device(device)
    images = synthetic_images(n, seed=2)
    model = build_model(TrainConfig(likelihood="bernoulli"), (1, 28, 28)).to(device).eval()
    data = dataset_of(images)
    embed(model, dataset_of(images[:batch_size * 2]), batch_size=batch_size, device=device)  # warm-up
    synchronize(device)
    started = time.perf_counter()
    frame = embed(model, data, batch_size=batch_size, device=device)
    in_memory = time.perf_counter() - started
    assert len(frame) == n and frame["id"].is_unique
    print(f"  embed {n:,} in-memory images (batch {batch_size}): {n / in_memory:,.0f} img/s", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        np.save(Path(tmp) / "images.npy", images)
        run = Path(tmp) / "run"
        config = TrainConfig(epochs=1, device=device.type)
        train(dataset_of(images[:20000]), config, out_dir=run, progress=False)
        command = [sys.executable, "-m", "vaetools_pipelines.cli", "embed", "--model", str(run), "--data",
                   str(Path(tmp) / "images.npy"), "--out", str(Path(tmp) / "latents.parquet"),
                   "--batch-size", str(batch_size), "--device", device.type, "--quiet"]
        started = time.perf_counter()
        subprocess.run(command, check=True, cwd=ROOT, capture_output=True)
        end_to_end = time.perf_counter() - started
        rows_written = len(__import__("pandas").read_parquet(Path(tmp) / "latents.parquet"))
    print(f"  `vaetools embed` of {n:,} images from .npy to Parquet, end to end: {end_to_end:.1f} s", flush=True)
    return {"images": n, "batch_size": batch_size, "in_memory_seconds": in_memory,
            "in_memory_images_per_second": n / in_memory, "end_to_end_command_seconds": end_to_end,
            "end_to_end_images_per_second": n / end_to_end, "rows_written": rows_written}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["cpu", "gpu", "latents"], default="cpu")
    parser.add_argument("--n-latents", type=int, default=5_000_000, help="synthetic 16-d latents for --part latents")
    parser.add_argument("--images", type=int, default=None, help="images to train on (cpu 20,000; gpu 60,000)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs; the first is a warm-up (cpu 2, gpu 4)")
    parser.add_argument("--out", default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.images, args.epochs, args.result)
    results = {"benchmark": "scale", "part": args.part, "machine": machine()}
    if args.part == "cpu":
        n, epochs = args.images or 20000, args.epochs or 2
        print(f"train {epochs} epochs on {n:,} synthetic 28x28 images, then embed them", flush=True)
        results["processes"] = cpu_processes(n, epochs)
        results["folder_loading"] = folder_loading(20000)
        results["targets"] = "none: this part states what 1 and 2 gloo processes and 0 and 2 workers give"
    elif args.part == "latents":
        from label_propagation import synthetic_million

        print(f"LabelPropagator defaults on {args.n_latents:,} synthetic 16-d latents (10 classes, 1% labelled), "
              "in a child process", flush=True)
        results["propagation"] = synthetic_million(args.n_latents)
        print(f"  {results['propagation']}", flush=True)
    else:
        if not torch.cuda.is_available():
            raise SystemExit("Error: --part gpu needs a CUDA GPU, and this machine has none")
        n, epochs = args.images or 60000, args.epochs or 4
        results["training"] = gpu_training(n, epochs, [128, 1024])
        results["embedding"] = gpu_embedding(1_000_000, 8192)
        best = max(results["training"], key=lambda r: r["images_per_second"])
        results["targets"] = {"train_images_per_second": 100_000, "train_speedup_over_examples_loop": 5,
                              "embed_images_per_second": 500_000}
        results["met"] = {
            "train_images_per_second": best["images_per_second"] >= 100_000,
            "train_speedup_over_examples_loop": best["speedup_over_examples_loop"] >= 5,
            "embed_images_per_second": results["embedding"]["in_memory_images_per_second"] >= 500_000}
    out = Path(args.out or ROOT / "bench" / "results" / f"scale_{args.part}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
