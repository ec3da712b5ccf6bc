"""Images in one folder per class: ``root/<class>/<image>`` (``.npy``, ``.png``, ``.jpg``, ``.jpeg``).

``.npy`` files (``H x W`` or ``H x W x C``, read with ``allow_pickle=False``) need nothing
extra; PNG and JPEG files are decoded with Pillow, an optional dependency
(``pip install rlnas[images]``), imported only when such a file is found.

If ``root`` has a ``train`` subfolder, it is the train split and ``valid`` (or ``val``) and
``test`` subfolders, when present, are used as they are; a missing one is carved out of
``train`` (stratified, seeded). Otherwise all class folders sit directly under ``root`` and all
three splits are carved out of them.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from rlnas.datasets.base import DatasetSplits, make_splits, stratified_split
from rlnas.errors import ConfigError, first_line

PIL_SUFFIXES = (".png", ".jpg", ".jpeg")
SUFFIXES = (".npy",) + PIL_SUFFIXES


MAX_IMAGE_SIDE = 4096
"""Largest ``image_size`` side: every image is held resized in memory (4096 x 4096 RGB is 200 MB)."""

SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
"""Pillow modes of 16-bit images (a 16-bit grey PNG opens as ``I;16`` or ``I``): divided by 65,535."""


def read_image(path: Path) -> np.ndarray:
    """One image as float32 ``C x H x W`` in ``[0, 1]``: 8-bit pixels are divided by 255, 16-bit ones by
    65,535; a float ``.npy`` must already lie in ``[0, 1]``. A file that cannot be read, or pixels of
    another type or range, are a one-line :class:`ConfigError` naming the file."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            array = np.load(path, allow_pickle=False)
            if not isinstance(array, np.ndarray):  # an .npz archive under an .npy name
                array.close()
                raise ConfigError(f"{path}: an .npz archive, not one .npy array")
        elif suffix in PIL_SUFFIXES:
            array = _decode(path)
        else:
            raise ConfigError(f"{path}: unsupported image type {suffix!r} (use one of {', '.join(SUFFIXES)})")
    except (OSError, ValueError, SyntaxError) as exc:  # truncated, corrupt, not an image, pickled objects, ...
        reason = first_line(exc)
        if "allow_pickle" in reason:  # numpy's word for any file without an .npy header: never load it unsafely
            reason = "not an .npy array (damaged, or pickled Python objects, which rlnas never loads)"
        raise ConfigError(f"cannot read image {path}: {reason}") from None
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ConfigError(f"{path}: image of shape {array.shape}, expected H x W or H x W x C with C in 1, 3, 4")
    array = array[:, :, :3]  # drop alpha
    return np.ascontiguousarray(_unit_range(array, path).transpose(2, 0, 1), dtype=np.float32)


def _decode(path: Path) -> np.ndarray:
    """A PNG or JPEG as an ``H x W`` or ``H x W x C`` array (uint8, or uint16 for 16-bit images)."""
    try:
        from PIL import Image
    except ImportError:
        raise ConfigError(f"reading {path.name} needs Pillow (pip install 'rlnas[images]'), "
                          "or store the images as .npy") from None
    try:
        img = Image.open(path)
    except Image.DecompressionBombError as exc:  # Pillow's guard against a small file of huge size
        raise ConfigError(f"cannot read image {path}: {first_line(exc)}") from None
    with img:
        if img.mode in SIXTEEN_BIT_MODES:
            array = np.asarray(img)
            if array.min() < 0 or array.max() > 65535:
                raise ConfigError(f"{path}: pixels of mode {img.mode} outside 0..65535")
            return array.astype(np.uint16)
        if img.mode not in ("L", "RGB"):
            img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
        return np.asarray(img)


def _unit_range(array: np.ndarray, path: Path) -> np.ndarray:
    """Pixels as float32 in ``[0, 1]``: uint8 / 255, uint16 / 65,535, bool as 0 / 1, floats as they are."""
    if array.dtype.kind == "u" and array.dtype.itemsize <= 2:  # either byte order
        return array.astype(np.float32) / float(np.iinfo(array.dtype).max)
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ConfigError(f"{path}: float pixels must be finite and lie in [0, 1], some are NaN or infinite")
        if array.min() < 0 or array.max() > 1:
            raise ConfigError(f"{path}: float pixels must be finite and lie in [0, 1], got {array.min():g} to "
                              f"{array.max():g}")
        return array.astype(np.float32)
    raise ConfigError(f"{path}: pixels of type {array.dtype}: store uint8 (0..255), uint16 (0..65535) "
                      "or float in [0, 1]")


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _image_files(folder: Path) -> list[Path]:
    """The image files of a class folder (hidden ones, such as macOS ``._x.png``, are not images)."""
    files = sorted(p for p in folder.iterdir()
                   if p.suffix.lower() in SUFFIXES and not p.name.startswith(".") and not p.is_dir())
    for path in files:
        if path.exists() and not path.is_file():  # a named pipe would block the reader for ever
            raise ConfigError(f"{path}: not a regular file (a named pipe, socket or device); an image folder "
                              "holds image files")
    return files


def _read_split(folder: Path, classes: list[str],
                image_size: tuple[int, int] | None) -> tuple[list[torch.Tensor], list[int]]:
    images, labels = [], []
    for label, name in enumerate(classes):
        sub = folder / name
        files = _image_files(sub) if sub.is_dir() else []
        for path in files:
            x = torch.from_numpy(read_image(path))
            if image_size is not None and tuple(x.shape[1:]) != tuple(image_size):
                x = F.interpolate(x[None], size=tuple(image_size), mode="bilinear", antialias=True,
                                  align_corners=False)[0].clamp(0, 1)
            images.append(x)
            labels.append(label)
    return images, labels


def _stack(images: list[torch.Tensor], where: Path) -> torch.Tensor:
    channels = max(x.shape[0] for x in images)
    sizes = {tuple(x.shape[1:]) for x in images}
    if len(sizes) > 1:
        raise ConfigError(f"images under {where} have different sizes {sorted(sizes)[:4]}; pass image_size=(H, W)")
    return torch.stack([x.expand(channels, -1, -1) for x in images])


def load_image_folder(root: str | Path | None, *, valid_fraction: float = 0.2, test_fraction: float = 0.2,
                      split_seed: int = 0, image_size: tuple[int, int] | None = None) -> DatasetSplits:
    """Load an image folder (see the module docstring); grey images join colour ones as RGB."""
    if root is None:
        raise ConfigError("imagefolder needs data_root: a folder with one subfolder of images per class")
    if image_size is not None and (not isinstance(image_size, (list, tuple)) or len(image_size) != 2 or any(
            isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_IMAGE_SIDE for v in image_size)):
        raise ConfigError(f"image_size must be two integers (H, W) from 1 to {MAX_IMAGE_SIDE}, got {image_size!r}")
    root = Path(root).expanduser()
    if root.is_file():
        raise ConfigError(f"image folder {root} is a file: give the folder that holds one subfolder per class")
    if not root.is_dir():
        raise ConfigError(f"image folder {root} does not exist")
    split_dirs = {"train": root / "train"}
    if split_dirs["train"].is_dir():
        for key, names in (("valid", ("valid", "val")), ("test", ("test",))):
            found = [root / n for n in names if (root / n).is_dir()]
            if found:
                split_dirs[key] = found[0]
    else:
        split_dirs = {"train": root}
    classes = [p.name for p in _class_dirs(split_dirs["train"])]
    if len(classes) < 2:
        hint = ""
        if split_dirs["train"] != root and _image_files(split_dirs["train"]):
            hint = ("; it holds images itself: a folder named 'train' is read as the train split (with class "
                    "subfolders), so rename a class called 'train'")
        raise ConfigError(f"{split_dirs['train']} has {len(classes)} class subfolder(s): a classifier needs two "
                          f"or more (one subfolder of images per class){hint}")
    empty = [name for name in classes if not _image_files(split_dirs["train"] / name)]
    if empty:
        raise ConfigError(f"class folder(s) {empty} under {split_dirs['train']} hold no {'/'.join(SUFFIXES)} images")
    for key, folder in split_dirs.items():
        unknown = sorted(p.name for p in _class_dirs(folder) if p.name not in classes)
        if key != "train" and unknown:
            raise ConfigError(f"{folder} has class folder(s) {unknown} that {split_dirs['train']} lacks")
    read = {k: _read_split(d, classes, image_size) for k, d in split_dirs.items()}
    everything = [x for imgs, _ in read.values() for x in imgs]
    if not read["train"][0]:
        raise ConfigError(f"no {'/'.join(SUFFIXES)} images found under {split_dirs['train']}")
    stacked = _stack(everything, root)
    start, tensors = 0, {}
    for key, (imgs, labels) in read.items():
        tensors[key] = (stacked[start : start + len(imgs)], torch.tensor(labels, dtype=torch.int64))
        start += len(imgs)
    train_x, train_y = tensors.pop("train")
    fractions = {"test": test_fraction if "test" not in tensors else 0.0,
                 "valid": valid_fraction if "valid" not in tensors else 0.0}
    test_idx, valid_idx, train_idx = stratified_split(train_y.numpy(), (fractions["test"], fractions["valid"]),
                                                      split_seed)
    carved = [k for k in ("valid", "test") if k not in tensors]
    info = {"source": str(root), "classes": classes,
            "split": "folders " + ", ".join(f"{k}={d.name}" for k, d in split_dirs.items())
                     + (f"; {' and '.join(carved)} carved out of train (stratified, seed {split_seed}, "
                        f"valid {fractions['valid']:g}, test {fractions['test']:g})" if carved else "")}
    return make_splits("imagefolder", train_x, train_y, {"train": train_idx, "valid": valid_idx, "test": test_idx},
                       scale=1.0, num_classes=len(classes), info=info, extra=tensors)
