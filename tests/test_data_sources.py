import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from conftest import write_idx
from vae_tools.data import load_dataset
from vae_tools.errors import DataError


def test_npz_uint8_scaled_to_unit_range_with_labels(npz_file, images_and_labels):
    images, labels = images_and_labels
    data = load_dataset(npz_file)
    assert data.shape == (1, 12, 12) and len(data) == len(images)
    batch = data.batch(np.array([3, 0]))
    assert batch.dtype == torch.float32
    np.testing.assert_allclose(batch[0, 0].numpy(), images[3] / 255.0, atol=1e-6)
    np.testing.assert_array_equal(data.labels, labels)
    assert list(data.ids[:2]) == ["0", "1"]


def test_npz_with_train_and_test_splits(tmp_path, images_and_labels):
    images, labels = images_and_labels
    path = tmp_path / "split.npz"
    np.savez(path, x_train=images[:40], y_train=labels[:40], x_test=images[40:], y_test=labels[40:])
    everything = load_dataset(path)
    assert len(everything) == 60 and everything.ids[0] == "train/0" and everything.ids[40] == "test/0"
    test = load_dataset(path, split="test")
    assert len(test) == 20
    np.testing.assert_array_equal(test.labels, labels[40:])
    with pytest.raises(DataError, match="no train/test split"):
        load_dataset(_single(tmp_path, images), split="train")


def _single(tmp_path, images):
    path = tmp_path / "single.npz"
    np.savez(path, images=images)
    return path


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_rgb_layouts_are_detected(tmp_path, layout):
    rng = np.random.default_rng(0)
    nhwc = rng.random((8, 10, 14, 3)).astype(np.float32)
    array = nhwc if layout == "NHWC" else nhwc.transpose(0, 3, 1, 2)
    path = tmp_path / "rgb.npy"
    np.save(path, array)
    data = load_dataset(path)
    assert data.shape == (3, 10, 14)
    np.testing.assert_allclose(data.batch(np.array([5]))[0].numpy(), nhwc[5].transpose(2, 0, 1), atol=1e-6)


def test_npy_is_memory_mapped_and_flat_square_rows_reshaped(tmp_path, images_and_labels):
    images, _ = images_and_labels
    path = tmp_path / "flat.npy"
    np.save(path, images.reshape(len(images), -1))
    data = load_dataset(path)
    assert isinstance(data.reader.array, np.memmap)
    assert data.shape == (1, 12, 12)
    np.testing.assert_allclose(data.batch(np.array([7]))[0, 0].numpy(), images[7] / 255.0, atol=1e-6)


def test_uncompressed_npz_is_memory_mapped_and_compressed_npz_still_reads(tmp_path, images_and_labels):
    images, labels = images_and_labels
    np.savez(tmp_path / "plain.npz", x=images, y=labels)
    np.savez_compressed(tmp_path / "packed.npz", x=images, y=labels)
    plain, packed = load_dataset(tmp_path / "plain.npz"), load_dataset(tmp_path / "packed.npz")
    assert isinstance(plain.reader.array, np.memmap)
    np.testing.assert_array_equal(plain.batch(np.arange(60)).numpy(), packed.batch(np.arange(60)).numpy())


def test_npz_ids_key_is_used(tmp_path, images_and_labels):
    images, _ = images_and_labels
    names = np.array([f"scan_{i}" for i in range(len(images))])
    np.savez(tmp_path / "named.npz", images=images, ids=names)
    assert load_dataset(tmp_path / "named.npz").ids[4] == "scan_4"


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_files_with_labels_beside_them(tmp_path, images_and_labels, suffix):
    images, labels = images_and_labels
    image_path = write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", images)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", labels.astype(np.uint8))
    data = load_dataset(image_path)
    assert data.shape == (1, 12, 12) and len(data) == 60
    np.testing.assert_array_equal(data.labels, labels)
    np.testing.assert_allclose(data.batch(np.array([2]))[0, 0].numpy(), images[2] / 255.0, atol=1e-6)
    if not suffix:
        assert isinstance(data.reader.array, np.memmap)


def test_idx_with_bad_magic_and_truncation(tmp_path, images_and_labels):
    images, _ = images_and_labels
    (tmp_path / "bad-images-idx3-ubyte").write_bytes(b"\x01\x02\x03\x04" + b"\0" * 20)
    with pytest.raises(DataError, match="bad magic"):
        load_dataset(tmp_path / "bad-images-idx3-ubyte")
    good = write_idx(tmp_path / "cut-images-idx3-ubyte", images)
    good.write_bytes(good.read_bytes()[:500])
    with pytest.raises(DataError, match="truncated"):
        load_dataset(good)


def test_folder_with_class_subfolders(image_folder, images_and_labels):
    images, labels = images_and_labels
    data = load_dataset(image_folder)
    assert data.shape == (1, 12, 12) and len(data) == 60
    assert set(data.labels) == {"horizontal", "vertical"}
    assert data.ids[0] == "horizontal/img_000.png"
    position = list(data.ids).index("vertical/img_001.png")
    np.testing.assert_allclose(data.batch(np.array([position]))[0, 0].numpy(), images[1] / 255.0, atol=1e-6)


def test_flat_folder_is_unlabelled_and_rgb_kept(tmp_path):
    rng = np.random.default_rng(1)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (9, 11, 3), dtype=np.uint8)).save(tmp_path / f"{i}.jpg")
    data = load_dataset(tmp_path)
    assert data.labels is None and data.shape == (3, 9, 11)
    assert list(data.ids) == ["0.jpg", "1.jpg", "2.jpg", "3.jpg"]
    assert load_dataset(tmp_path, channels=1).batch(np.arange(4)).shape == (4, 1, 9, 11)


def test_mixed_sizes_are_refused_or_resized(tmp_path):
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "a.png")
    Image.fromarray(np.full((16, 20), 255, np.uint8)).save(tmp_path / "b.bmp")
    Image.fromarray(np.full((16, 20), 128, np.uint8)).save(tmp_path / "c.tiff")
    with pytest.raises(DataError, match="different sizes.*`image_size`"):
        load_dataset(tmp_path)
    data = load_dataset(tmp_path, image_size=8)
    batch = data.batch(np.arange(3))
    assert batch.shape == (3, 1, 8, 8)
    assert batch[1].min() > 0.99 and abs(batch[2].mean() - 128 / 255) < 0.01


def test_corrupt_image_names_the_file(tmp_path):
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "good.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match="broken.png"):
        load_dataset(tmp_path)


def test_csv_of_pixels_with_label_column(tmp_path, images_and_labels):
    images, labels = images_and_labels
    frame = pd.DataFrame(images.reshape(60, -1), columns=[f"pixel{i}" for i in range(144)])
    frame.insert(0, "label", labels)
    frame.to_csv(tmp_path / "train.csv", index=False)
    data = load_dataset(tmp_path / "train.csv")
    assert data.shape == (1, 12, 12)
    np.testing.assert_array_equal(data.labels, labels)
    np.testing.assert_allclose(data.batch(np.array([9]))[0, 0].numpy(), images[9] / 255.0, atol=1e-6)
    frame.drop(columns="label").to_csv(tmp_path / "test.csv", index=False)
    assert load_dataset(tmp_path / "test.csv").labels is None


def test_csv_errors(tmp_path):
    pd.DataFrame({"a": ["x", "y"], "b": [1, 2], "c": [1, 2], "d": [1, 2]}).to_csv(tmp_path / "text.csv", index=False)
    with pytest.raises(DataError, match="column 'a' is not numeric"):
        load_dataset(tmp_path / "text.csv")
    pd.DataFrame({"a": [1, 2], "b": [1, 2], "c": [1, 2]}).to_csv(tmp_path / "odd.csv", index=False)
    with pytest.raises(DataError, match="not a square number"):
        load_dataset(tmp_path / "odd.csv")


def test_builtin_digits_is_offline():
    data = load_dataset("digits")
    assert data.shape == (1, 8, 8) and len(data) == 1797
    assert set(data.labels) == set(range(10))
    batch = data.batch(np.arange(100))
    assert 0.0 <= batch.min() and batch.max() <= 1.0 and batch.max() > 0.9


def test_resize_and_channel_conversion_of_arrays(npz_file):
    data = load_dataset(npz_file, image_size=(16, 20), channels=3)
    batch = data.batch(np.arange(4))
    assert batch.shape == (4, 3, 16, 20)
    assert torch.equal(batch[:, 0], batch[:, 2])


@pytest.mark.parametrize(
    "array, message",
    [
        (np.full((4, 8, 8), np.nan, dtype=np.float32), "NaN or infinite"),
        (np.full((4, 8, 8), np.inf, dtype=np.float64), "NaN or infinite"),
        (np.zeros((0, 8, 8), dtype=np.uint8), "empty"),
        (np.full((4, 8, 8), -1.0, dtype=np.float32), r"range from -1 .*expected intensities"),
        (np.full((4, 8, 8), 1e6, dtype=np.float32), "reach"),
        (np.zeros((4, 8, 8, 7), dtype=np.uint8), "channel axis"),
    ],
)
def test_bad_arrays_raise_a_clear_error_naming_the_file(tmp_path, array, message):
    path = tmp_path / "bad.npy"
    np.save(path, array)
    with pytest.raises(DataError, match=message) as info:
        load_dataset(path)
    assert "bad.npy" in str(info.value)


def test_label_count_mismatch(tmp_path, images_and_labels):
    images, labels = images_and_labels
    np.savez(tmp_path / "mismatch.npz", x=images, y=labels[:-5])
    with pytest.raises(DataError, match="55 labels .* 60 images"):
        load_dataset(tmp_path / "mismatch.npz")


def test_missing_unsupported_and_unreadable_sources(tmp_path):
    with pytest.raises(DataError, match="no such file or folder"):
        load_dataset(tmp_path / "nothing.npz")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="unsupported file type"):
        load_dataset(tmp_path / "notes.txt")
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="broken.npz"):
        load_dataset(tmp_path / "broken.npz")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files"):
        load_dataset(tmp_path / "empty")
    np.savez(tmp_path / "nokeys.npz", weights=np.zeros(3))
    with pytest.raises(DataError, match="no image array found"):
        load_dataset(tmp_path / "nokeys.npz")


def test_flat_pixels_read_once_or_viewed_in_memory_give_the_same_values(npz_file):
    data = load_dataset(str(npz_file))
    read = data.flat_pixels(batch_size=7)  # batches that do not divide the data
    expected = np.concatenate([data.batch(np.arange(len(data))).numpy().reshape(len(data), -1)])
    assert read.dtype == np.float32 and np.array_equal(read, expected)
    data.load_into_memory(1 << 30)
    viewed = data.flat_pixels()
    assert np.array_equal(viewed, expected) and not viewed.flags.writeable  # not a second copy to scribble on
    assert np.shares_memory(viewed, data.flat_pixels())
    rows = np.array([3, 0, 5])
    assert np.array_equal(data.subset(rows).flat_pixels(), expected[rows])  # a subset of the cache is its own rows
