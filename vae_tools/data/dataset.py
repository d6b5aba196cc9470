"""The one data type every step consumes: images as float tensors in [0, 1], ids and optional labels."""

from __future__ import annotations

from typing import Iterator, Optional, Protocol, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from vae_tools.errors import DataError
from vae_tools.progress import progress as progress_of


class ImageReader(Protocol):
    """Reads rows of a source as float32 (B, C, H, W) arrays in [0, 1] at the source's own size."""

    name: str
    shape: tuple[int, int, int]

    def __len__(self) -> int: ...

    def read(self, rows: np.ndarray) -> np.ndarray: ...


class ImageDataset:
    """Images from any source, converted on read to the requested channels and size.

    ``ids`` are strings that identify a sample stably across runs (a relative path, or a
    split and index); ``labels`` is None when the source has none.
    """

    def __init__(
        self,
        reader: ImageReader,
        ids: Sequence[str],
        labels: Optional[np.ndarray] = None,
        channels: Optional[int] = None,
        image_size: Optional[tuple[int, int]] = None,
        rows: Optional[np.ndarray] = None,
    ):
        self.reader = reader
        self.ids = np.asarray(ids, dtype=object)
        self.labels = None if labels is None else np.asarray(labels)
        self.rows = np.arange(len(reader)) if rows is None else np.asarray(rows, dtype=np.int64)
        if len(self.ids) != len(self.rows):
            raise DataError(f"{reader.name}: {len(self.ids)} ids for {len(self.rows)} images")
        if self.labels is not None and len(self.labels) != len(self.rows):
            raise DataError(f"{reader.name}: {len(self.labels)} labels for {len(self.rows)} images")
        if len(self.rows) == 0:
            raise DataError(f"{reader.name}: the data set is empty")
        native_c, native_h, native_w = reader.shape
        self.channels = channels or native_c
        if self.channels not in (1, 3):
            raise DataError(f"{reader.name}: images must have 1 or 3 channels, not {self.channels}")
        self.image_size = tuple(image_size) if image_size else (native_h, native_w)
        # Decoded images, shared by a dataset and its subsets; _cache_index maps positions to cache rows.
        self._cache: Optional[torch.Tensor] = None
        self._cache_index: Optional[torch.Tensor] = None

    @property
    def name(self) -> str:
        return self.reader.name

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, *self.image_size)

    @property
    def native_sizes(self) -> set:
        """The (height, width) sizes the images have in the source, before any resizing."""
        return set(getattr(self.reader, "native_sizes", {tuple(self.reader.shape[1:])}))

    @property
    def in_memory(self) -> bool:
        """Whether the images were decoded into memory by ``load_into_memory``."""
        return self._cache is not None

    @property
    def has_labels(self) -> bool:
        return self.labels is not None

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        labelled = "labelled" if self.has_labels else "unlabelled"
        return f"ImageDataset({self.name!r}, n={len(self)}, shape={self.shape}, {labelled})"

    def at_size(self, size: tuple[int, int]) -> "ImageDataset":
        """The same images at ``size`` (height, width): decoded straight to it where the source can
        (image files), resized after reading otherwise; nothing decoded so far is kept."""
        size = tuple(int(v) for v in size)
        resized = getattr(self.reader, "at_size", None)
        reader = resized(size) if resized is not None else self.reader
        return ImageDataset(reader, self.ids, self.labels, self.channels, size, self.rows)

    def subset(self, positions: np.ndarray) -> "ImageDataset":
        positions = np.asarray(positions, dtype=np.int64)
        sub = ImageDataset(
            self.reader,
            self.ids[positions],
            None if self.labels is None else self.labels[positions],
            self.channels,
            self.image_size,
            self.rows[positions],
        )
        if self._cache is not None:
            sub._cache = self._cache
            sub._cache_index = self._cache_index[torch.from_numpy(positions)]
        return sub

    def batch(self, positions: np.ndarray) -> torch.Tensor:
        """Images at ``positions`` (indices into this dataset) as a float32 (B, C, H, W) tensor."""
        positions = np.asarray(positions, dtype=np.int64)
        if self._cache is not None:
            return self._cache[self._cache_index[torch.from_numpy(positions)]]
        rows = self.rows[positions]
        # Reading in row order keeps memory-mapped and file reads sequential.
        order = np.argsort(rows, kind="stable")
        raw = self.reader.read(rows[order])
        out = np.empty_like(raw)
        out[order] = raw
        return self._convert(torch.from_numpy(out))

    def batch_on(self, positions: np.ndarray, device: torch.device) -> torch.Tensor:
        """``batch(positions)`` on ``device``. To a GPU, integer pixels that need no resizing or
        channel change travel in their stored type and become float32 there (the same values)."""
        positions = np.asarray(positions, dtype=np.int64)
        stored = getattr(self.reader, "read_stored", None)
        direct = (device.type == "cuda" and self._cache is None and stored is not None
                  and tuple(self.reader.shape) == self.shape)
        raw = stored(self.rows[positions]) if direct else None
        if raw is None:
            x = self.batch(positions)
            return (x.pin_memory() if device.type == "cuda" else x).to(device, non_blocking=True)
        pixels, scale = raw
        on_device = torch.from_numpy(pixels).pin_memory().to(device, non_blocking=True)
        if scale == 1.0:
            return on_device.to(torch.float32)
        # A divisor on the GPU, not a Python number: CUDA divides by a host scalar as a multiplication
        # by its reciprocal, which is one rounding away from what the CPU path gives.
        return on_device.to(torch.float32) / torch.tensor(scale, dtype=torch.float32, device=device)

    def _convert(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] != self.channels:
            if self.channels == 3:
                x = x.expand(-1, 3, -1, -1)
            else:
                weights = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype).view(1, 3, 1, 1)
                x = (x[:, :3] * weights).sum(dim=1, keepdim=True)
        if tuple(x.shape[2:]) != self.image_size:
            x = F.interpolate(x, size=self.image_size, mode="bilinear", antialias=True, align_corners=False)
            x = x.clamp_(0.0, 1.0)
        return x.contiguous()

    def iter_batches(self, batch_size: int, progress: bool = False, desc: str = "",
                     workers: int = 0) -> Iterator[tuple[np.ndarray, torch.Tensor]]:
        """Yield (positions, images) over the whole dataset in order. With ``workers`` > 0, that many
        torch DataLoader processes decode batches ahead of the caller (images in memory need none)."""
        batches = _Batches(self, batch_size)
        n_batches = len(batches)
        if workers > 0 and self._cache is None and n_batches > 1:
            batches = torch.utils.data.DataLoader(batches, batch_size=None, num_workers=workers, prefetch_factor=4,
                                                  multiprocessing_context=_worker_start())
        source = ((positions.numpy(), images) for positions, images in batches)
        yield from progress_of(source, total=n_batches, desc=desc, enabled=progress, unit="batch")

    def flat_pixels(self, batch_size: int = 4096) -> np.ndarray:
        """Every image flattened, float32 in [0, 1], (n, C*H*W). When the images are in memory and in
        order this is a read-only view of them, not a second copy (3 GiB at a million 28x28 images)."""
        if self._cache is not None and len(self._cache) == len(self) and \
                torch.equal(self._cache_index, torch.arange(len(self))):
            view = self._cache.numpy().reshape(len(self), -1)
            view.flags.writeable = False
            return view
        # Filled in place: gathering the batches first would hold the pixels twice.
        out = np.empty((len(self), int(np.prod(self.shape))), dtype=np.float32)
        for positions, images in self.iter_batches(batch_size):
            out[positions[0]:positions[-1] + 1] = images.numpy().reshape(len(images), -1)
        return out

    def nbytes(self) -> int:
        c, h, w = self.shape
        return len(self) * c * h * w * 4

    def load_into_memory(self, max_bytes: int, progress: bool = False, workers: int = 0) -> bool:
        """Decode everything once into a tensor when it fits in ``max_bytes`` (with ``workers``
        DataLoader processes decoding); returns whether it did."""
        if self._cache is not None:
            return True
        if self.nbytes() > max_bytes:
            return False
        cache = torch.empty((len(self), *self.shape), dtype=torch.float32)
        for positions, images in self.iter_batches(1024, progress=progress, desc="loading images", workers=workers):
            cache[positions[0] : positions[-1] + 1] = images
        self._cache, self._cache_index = cache, torch.arange(len(self))
        return True


class _Batches(torch.utils.data.Dataset):
    """Batch k of an ImageDataset as one item, so DataLoader workers decode whole batches."""

    def __init__(self, data: ImageDataset, batch_size: int):
        self.data, self.batch_size = data, batch_size

    def __len__(self) -> int:
        return -(-len(self.data) // self.batch_size)

    def __iter__(self):
        return (self[k] for k in range(len(self)))

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        positions = np.arange(k * self.batch_size, min((k + 1) * self.batch_size, len(self.data)))
        return torch.from_numpy(positions), self.data.batch(positions)


def _worker_start():
    # fork copies the open readers for free where it exists; elsewhere (macOS, Windows) spawn is the only choice.
    import multiprocessing

    return "fork" if "fork" in multiprocessing.get_all_start_methods() else None
