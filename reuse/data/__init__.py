"""Data: reading every format into a `Dataset`, selecting rows, and fitting shapes to a model.

    dataset    load_data, Dataset, DataOptions, check_finite: what every --data option reads
    readers    one reader per format (.npz, .npy, HDF5, CSV, image folders, IDX)
    selection  --classes / --per-class / --limit, and the parsing of those options
    identity   content digests of data files, so caches can tell data apart
    shapes     the one rule that fits a sample shape to a model's input
    idx        the MNIST IDX file format
    demo       scikit-learn's 8x8 digits as train/valid/test .npz files

No module here imports TensorFlow (h5py and Pillow are imported when a file needs them).
"""

from reuse.data.dataset import DataOptions, Dataset, check_finite, load_data
from reuse.data.identity import file_identity
from reuse.data.selection import parse_classes, parse_image_size
from reuse.data.shapes import ShapeFit, fit_input_shape, fit_shape

__all__ = [
    "DataOptions",
    "Dataset",
    "ShapeFit",
    "check_finite",
    "file_identity",
    "fit_input_shape",
    "fit_shape",
    "load_data",
    "parse_classes",
    "parse_image_size",
]
