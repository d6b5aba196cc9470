"""The one-sentence description of a data source (the command line's SOURCE), importable without torch."""

from vae_tools.data.builtin import BUILTIN_NAMES

SOURCE_HELP = (
    "a folder of images (class sub-folders give labels), an .npz/.npy array, an IDX file (MNIST format, "
    "raw or .gz), a CSV of pixels, or a built-in data set: " + ", ".join(BUILTIN_NAMES)
    + " (append :train or :test to pick a split)"
)
