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
from rlnas.errors import ConfigError

PIL_SUFFIXES = (".png", ".jpg", ".jpeg")
SUFFIXES = (".npy",) + PIL_SUFFIXES


def read_image(path: Path) -> np.ndarray:
    """One image as float32 ``C x H x W`` in ``[0, 1]`` (integer pixels are divided by their max)."""
    suffix = path.suffix.lower()
    if suffix == ".npy":
        array = np.load(path, allow_pickle=False)
    elif suffix in PIL_SUFFIXES:
        try:
            from PIL import Image
        except ImportError:
            raise ConfigError(f"reading {path.name} needs Pillow (pip install 'rlnas[images]'), "
                              "or store the images as .npy") from None
        with Image.open(path) as img:
            if img.mode not in ("L", "RGB"):
                img = img.convert("RGBA" if "A" in img.getbands() else "RGB")
            array = np.asarray(img)
    else:
        raise ConfigError(f"{path}: unsupported image type {suffix!r} (use one of {', '.join(SUFFIXES)})")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ConfigError(f"{path}: image of shape {array.shape}, expected H x W or H x W x C with C in 1, 3, 4")
    array = array[:, :, :3]  # drop alpha
    if np.issubdtype(array.dtype, np.integer):
        array = array.astype(np.float32) / float(np.iinfo(array.dtype).max)
    return np.ascontiguousarray(array.transpose(2, 0, 1), dtype=np.float32)


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _read_split(folder: Path, classes: list[str],
                image_size: tuple[int, int] | None) -> tuple[list[torch.Tensor], list[int]]:
    images, labels = [], []
    for label, name in enumerate(classes):
        sub = folder / name
        files = sorted(p for p in sub.iterdir() if p.suffix.lower() in SUFFIXES) if sub.is_dir() else []
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
    root = Path(root).expanduser()
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
    if not classes:
        raise ConfigError(f"{split_dirs['train']} has no class subfolders")
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
