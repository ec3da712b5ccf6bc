"""Data loaders: shipped sets, CIFAR-10 python batches (fake, real format), image folders."""
from __future__ import annotations

import os
import pickle
import re
import tarfile
from importlib import resources

import numpy as np
import pytest
import torch

from rlnas.datasets import list_datasets, load_dataset, stratified_split
from rlnas.datasets.base import stratified_subset
from rlnas.errors import ConfigError

torch.set_num_threads(1)


def test_stratified_split_is_a_seeded_partition_with_the_class_mix():
    labels = np.repeat(np.arange(4), [10, 20, 30, 40])
    test, valid, train = stratified_split(labels, (0.2, 0.1), seed=3)
    together = np.concatenate([test, valid, train])
    assert sorted(together.tolist()) == list(range(100))
    assert np.bincount(labels[test]).tolist() == [2, 4, 6, 8]
    assert np.bincount(labels[valid]).tolist() == [1, 2, 3, 4]
    again = stratified_split(labels, (0.2, 0.1), seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(again, (test, valid, train)))
    assert not np.array_equal(stratified_split(labels, (0.2, 0.1), seed=4)[0], test)
    with pytest.raises(ValueError):
        stratified_split(labels, (0.6, 0.5), seed=0)


def test_digits_split_sizes_normalization_and_seed():
    data = load_dataset("digits")
    assert data.input_shape == (1, 8, 8) and data.num_classes == 10
    assert data.info["sizes"] == {"train": 1079, "valid": 359, "test": 359}
    x, y = data.train.tensors()
    assert x.dtype == torch.float32 and abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1) < 1e-3
    assert torch.bincount(data.test.labels).tolist() == [36, 36, 35, 37, 36, 36, 36, 36, 35, 36]
    # the three splits hold different images and together all 1797
    raw = np.load(resources.files("rlnas.data").joinpath("digits_8x8.npz"))["images"]
    total = torch.cat([data.train.images, data.valid.images, data.test.images]).numpy()
    assert sorted(map(bytes, total.reshape(len(total), -1))) == sorted(map(bytes, raw.reshape(len(raw), -1)))
    same = load_dataset("digits")
    assert torch.equal(same.valid.images, data.valid.images)
    other = load_dataset("digits", split_seed=1)
    assert not torch.equal(other.valid.images, data.valid.images)
    xb, yb = data.valid.batch(torch.tensor([0, 5]))
    assert xb.shape == (2, 1, 8, 8) and torch.equal(yb, data.valid.labels[[0, 5]])
    x0, y0 = data.valid[5]
    assert torch.allclose(x0, xb[1]) and int(y0) == int(yb[1])


def test_mnist5k_is_balanced():
    data = load_dataset("mnist5k", valid_fraction=0.1)
    assert data.input_shape == (1, 28, 28)
    assert data.info["sizes"] == {"train": 3500, "valid": 500, "test": 1000}
    assert torch.bincount(data.test.labels).tolist() == [100] * 10


def _pixels(n: int, offset: int) -> np.ndarray:
    rng = np.random.default_rng(offset)
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)


def _write_cifar(folder, per_batch=4, n_test=3):
    folder.mkdir(parents=True, exist_ok=True)
    expected = []
    for b in range(1, 6):
        data = _pixels(per_batch, b)
        labels = [(b * per_batch + i) % 10 for i in range(per_batch)]
        expected.append((data, labels))
        batch = {b"batch_label": f"training batch {b} of 5".encode(), b"labels": labels, b"data": data,
                 b"filenames": [f"img{i}.png".encode() for i in range(per_batch)]}
        (folder / f"data_batch_{b}").write_bytes(pickle.dumps(batch, protocol=2))
    test = _pixels(n_test, 99)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": test, b"labels": [7, 1, 3][:n_test]}, protocol=2))
    return expected, test


def test_cifar10_reads_the_python_batches(tmp_path):
    _, test = _write_cifar(tmp_path / "cifar-10-batches-py")
    data = load_dataset("cifar10", tmp_path, valid_fraction=0.5)
    assert data.input_shape == (3, 32, 32) and data.num_classes == 10
    assert data.info["sizes"] == {"train": 10, "valid": 10, "test": 3}
    assert data.info["classes"][0] == "airplane"
    # test_batch kept in order; channel-major rows: pixel (c, r, col) = data[c*1024 + r*32 + col]
    assert data.test.labels.tolist() == [7, 1, 3]
    img = data.test.images[2].numpy()
    assert img[0, 0, 0] == test[2, 0] and img[1, 0, 0] == test[2, 1024]
    assert img[2, 31, 31] == test[2, 3071] and img[0, 1, 2] == test[2, 34]
    assert torch.bincount(data.valid.labels, minlength=10).tolist() == [1] * 10
    # the same directory given directly, and as the official tar.gz
    direct = load_dataset("cifar10", tmp_path / "cifar-10-batches-py", valid_fraction=0.5)
    assert torch.equal(direct.train.images, data.train.images)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    packed = load_dataset("cifar10", archive, valid_fraction=0.5)
    assert torch.equal(packed.valid.images, data.valid.images)
    assert torch.equal(packed.test.images, data.test.images)
    downloads = tmp_path / "downloads"  # a folder holding just the archive, as downloaded
    downloads.mkdir()
    archive.rename(downloads / archive.name)
    assert torch.equal(load_dataset("cifar10", downloads, valid_fraction=0.5).test.images, data.test.images)


def test_cifar10_train_size_keeps_a_subset(tmp_path):
    _write_cifar(tmp_path, per_batch=20)
    data = load_dataset("cifar10", tmp_path, valid_fraction=0.1, train_size=50)
    assert data.info["sizes"]["train"] == 50 and data.info["sizes"]["valid"] == 10
    full = load_dataset("cifar10", tmp_path, valid_fraction=0.1).train.labels
    for size in (5, 15, 17, 89):  # exactly the size asked, not each class's rounding (5 -> 7, 89 -> all 90)
        labels = load_dataset("cifar10", tmp_path, valid_fraction=0.1, train_size=size).train.labels
        assert len(labels) == size
        counts, whole = torch.bincount(labels, minlength=10), torch.bincount(full, minlength=10)
        assert ((counts - whole * size / len(full)).abs() < 1).all()  # each class within one of its share
    for bad in (0, -5):
        with pytest.raises(ConfigError, match=f"cifar10: train_size must be a positive integer .*got {bad!r}"):
            load_dataset("cifar10", tmp_path, train_size=bad)
    for bad in (2.5, True):  # the option's type, checked before the loader runs
        with pytest.raises(ConfigError, match=f"option 'train_size' must be an integer or null, got {bad!r}"):
            load_dataset("cifar10", tmp_path, train_size=bad)


def test_stratified_subset_is_exact_seeded_and_proportional():
    labels = np.array([0] * 7 + [1] * 5 + [2] * 3)
    for size in range(16):
        picked = stratified_subset(labels, size, seed=3)
        assert len(picked) == size == len(set(picked.tolist())) and list(picked) == sorted(picked)
        assert all(abs((labels[picked] == c).sum() - (labels == c).sum() * size / 15) < 1 for c in range(3))
    assert stratified_subset(labels, 6, 1).tolist() == stratified_subset(labels, 6, 1).tolist()
    # 6 of 15: shares 2.8, 2.0, 1.2 -> 2, 2, 1 and the one left over to the largest remainder (class 0)
    assert np.bincount(labels[stratified_subset(labels, 6, 0)]).tolist() == [3, 2, 1]


def test_cifar10_of_one_class_is_refused(tmp_path):
    for b in range(1, 6):
        (tmp_path / f"data_batch_{b}").write_bytes(pickle.dumps({b"data": _pixels(4, b), b"labels": [3] * 4}))
    (tmp_path / "test_batch").write_bytes(pickle.dumps({b"data": _pixels(2, 9), b"labels": [3, 3]}))
    with pytest.raises(ConfigError, match="hold one class only \\(3\\); a classifier needs two or more"):
        load_dataset("cifar10", tmp_path)


class _Evil:
    def __reduce__(self):
        return (print, ("this must never be printed",))


def test_cifar10_refuses_pickles_that_call_anything(tmp_path, capsys):
    _write_cifar(tmp_path)
    (tmp_path / "data_batch_3").write_bytes(pickle.dumps({b"data": _Evil(), b"labels": [1]}, protocol=2))
    with pytest.raises(ConfigError, match=r"refusing to load (__builtin__|builtins)\.print"):
        load_dataset("cifar10", tmp_path)
    assert "never" not in capsys.readouterr().out


def test_cifar10_errors_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="needs data_root"):
        load_dataset("cifar10")
    with pytest.raises(ConfigError, match="holds no CIFAR-10 python batches"):
        load_dataset("cifar10", tmp_path)
    with pytest.raises(ConfigError, match="data_root .*gone does not exist"):  # said it held no batches
        load_dataset("cifar10", tmp_path / "gone")
    _write_cifar(tmp_path)
    (tmp_path / "data_batch_2").write_bytes(b"not a pickle")
    with pytest.raises(ConfigError, match="data_batch_2 is not a CIFAR python batch"):
        load_dataset("cifar10", tmp_path)
    (tmp_path / "data_batch_2").write_bytes(pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(ConfigError, match=r"expected \[N, 3072\]"):
        load_dataset("cifar10", tmp_path)


def _npy_folder(root, classes=("cat", "dog"), n=5, size=(6, 6)):
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(n):
            np.save(root / name / f"{i}.npy", np.full(size, 40 * c + i, dtype=np.uint8))
    (root / "dog" / "notes.txt").write_text("ignored")
    return rng


def test_imagefolder_of_npy_carves_the_splits(tmp_path):
    _npy_folder(tmp_path)
    data = load_dataset("imagefolder", tmp_path)
    assert data.info["classes"] == ["cat", "dog"] and data.num_classes == 2
    assert data.info["sizes"] == {"train": 6, "valid": 2, "test": 2}
    assert data.input_shape == (1, 6, 6)
    everything = torch.cat([data.train.images, data.valid.images, data.test.images])
    values = sorted(round(float(v) * 255) for v in everything[:, 0, 0, 0])
    assert values == [0, 1, 2, 3, 4, 40, 41, 42, 43, 44]
    for split in (data.train, data.valid, data.test):  # labels follow the folder of each image
        pix = (split.images[:, 0, 0, 0] * 255).round()
        assert torch.equal(split.labels, (pix >= 40).long())


def test_imagefolder_with_split_subfolders_and_resizing(tmp_path):
    _npy_folder(tmp_path / "train")
    _npy_folder(tmp_path / "val", n=2, size=(12, 12))
    with pytest.raises(ConfigError, match="different sizes"):
        load_dataset("imagefolder", tmp_path)
    data = load_dataset("imagefolder", tmp_path, image_size=(6, 6), test_fraction=0.4)
    assert data.info["sizes"] == {"train": 6, "valid": 4, "test": 4}
    assert "val" in data.info["split"]


def test_imagefolder_png_and_jpeg_with_pillow(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for i in range(5):
        Image.fromarray(np.full((8, 8, 3), (200, 10 * i, 0), dtype=np.uint8)).save(tmp_path / "a" / f"{i}.png")
        Image.fromarray(np.full((8, 8), 50, dtype=np.uint8), mode="L").save(tmp_path / "b" / f"{i}.jpg")
    data = load_dataset("imagefolder", tmp_path)
    assert data.input_shape == (3, 8, 8)  # grey JPEGs join the RGB PNGs as three equal channels
    every = torch.cat([data.train.images, data.valid.images, data.test.images])
    labels = torch.cat([data.train.labels, data.valid.labels, data.test.labels])
    reds = every[labels == 0][:, 0, 0, 0]
    assert torch.allclose(reds, torch.full_like(reds, 200 / 255))
    grey = every[labels == 1][:, :, 0, 0]
    assert torch.allclose(grey, torch.full_like(grey, 50 / 255), atol=2 / 255)


def test_unknown_names_and_options_are_config_errors(tmp_path):
    assert list_datasets() == ["cifar10", "digits", "imagefolder", "mnist5k"]
    with pytest.raises(ConfigError, match="unknown dataset 'svhn'"):
        load_dataset("svhn")
    with pytest.raises(ConfigError, match="train_size"):
        load_dataset("digits", train_size=10)
    with pytest.raises(ConfigError, match="does not exist"):
        load_dataset("imagefolder", tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="has 0 class subfolder"):
        load_dataset("imagefolder", tmp_path / "empty")


def test_png_without_pillow_says_what_to_install(tmp_path, monkeypatch):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "0.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    monkeypatch.setitem(__import__("sys").modules, "PIL", None)  # import PIL now fails
    with pytest.raises(ConfigError, match=r"needs Pillow \(pip install 'rlnas\[images\]'\)"):
        load_dataset("imagefolder", tmp_path)


def test_unreadable_or_odd_images_are_one_line_errors_naming_the_file(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    cases = {"truncated.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "empty.png": b"", "garbage.npy": b"not numpy"}
    for name, content in cases.items():
        root = tmp_path / name
        _npy_folder(root)
        (root / "cat" / name).write_bytes(content)
        with pytest.raises(ConfigError, match=f"cannot read image .*{name}"):
            load_dataset("imagefolder", root)
    root = tmp_path / "object"
    _npy_folder(root)
    np.save(root / "cat" / "objects.npy", np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(ConfigError, match="cannot read image .*objects.npy: not an .npy array .damaged, or pickled "
                                          "Python objects, which rlnas never loads.$"):
        load_dataset("imagefolder", root)  # numpy's text advised loading it unsafely
    for name, array, message in (("wide.npy", np.zeros((6, 6), dtype=np.int64), "pixels of type int64"),
                                 ("bright.npy", np.full((6, 6), 200.0), r"must be finite and lie in \[0, 1\]"),
                                 ("nan.npy", np.full((6, 6), np.nan, dtype=np.float32), "float pixels must be finite")):
        root = tmp_path / name
        _npy_folder(root)
        np.save(root / "dog" / name, array)
        with pytest.raises(ConfigError, match=message):
            load_dataset("imagefolder", root)
    root = tmp_path / "hidden"
    _npy_folder(root)
    (root / "cat" / "._0.png").write_bytes(b"AppleDouble")  # macOS metadata, not an image
    assert load_dataset("imagefolder", root).info["sizes"] == {"train": 6, "valid": 2, "test": 2}
    assert Image is not None


def test_sixteen_bit_images_keep_their_range(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    for c, name in enumerate(("a", "b")):
        (tmp_path / name).mkdir()
        for i in range(5):
            Image.fromarray(np.full((4, 4), 10000 * (c + 1) + i, dtype=np.uint16)).save(tmp_path / name / f"{i}.png")
    data = load_dataset("imagefolder", tmp_path)
    every = torch.cat([data.train.images, data.valid.images, data.test.images])[:, 0, 0, 0]
    assert sorted(round(float(v) * 65535) for v in every)[::5] == [10000, 20000]  # not clipped at 255


def test_big_endian_pixels_read_as_native_ones(tmp_path):
    for c, name in enumerate(("a", "b")):
        (tmp_path / name).mkdir()
        for i in range(5):
            np.save(tmp_path / name / f"{i}.npy", np.full((4, 4), 10000 * (c + 1) + i, dtype=">u2"))
    data = load_dataset("imagefolder", tmp_path)  # refused: "pixels of type >u2: store ... uint16"
    every = torch.cat([data.train.images, data.valid.images, data.test.images])[:, 0, 0, 0]
    assert sorted(round(float(v) * 65535) for v in every)[::5] == [10000, 20000]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_a_named_pipe_with_an_image_name_is_an_error_not_a_hang(tmp_path):
    _npy_folder(tmp_path)
    os.mkfifo(tmp_path / "cat" / "pipe.npy")  # opening it to read would wait for a writer for ever
    with pytest.raises(ConfigError, match=r"pipe.npy: not a regular file \(a named pipe, socket or device\)"):
        load_dataset("imagefolder", tmp_path)


def test_classes_and_splits_must_hold_images(tmp_path):
    _npy_folder(tmp_path / "one")
    (tmp_path / "one" / "eel").mkdir()  # an empty class folder
    with pytest.raises(ConfigError, match=r"class folder\(s\) \['eel'\] .* hold no"):
        load_dataset("imagefolder", tmp_path / "one")
    (tmp_path / "single" / "cat").mkdir(parents=True)
    np.save(tmp_path / "single" / "cat" / "0.npy", np.zeros((6, 6), dtype=np.uint8))
    with pytest.raises(ConfigError, match="has 1 class subfolder"):
        load_dataset("imagefolder", tmp_path / "single")
    _npy_folder(tmp_path / "split" / "train")
    _npy_folder(tmp_path / "split" / "valid", classes=("cat", "dog", "eel"))
    with pytest.raises(ConfigError, match=r"class folder\(s\) \['eel'\] that .* lacks"):
        load_dataset("imagefolder", tmp_path / "split")
    _npy_folder(tmp_path / "few", n=1)
    with pytest.raises(ConfigError, match=r"the valid and test splits are empty \(train 2, valid 0, test 0"):
        load_dataset("imagefolder", tmp_path / "few")
    for options in ({"valid_fraction": 0.99}, {"test_fraction": -0.1}):
        with pytest.raises(ConfigError, match="split fractions"):
            load_dataset("digits", **options)
    with pytest.raises(ConfigError, match="image_size must be two integers \\(H, W\\) from 1 to 4096"):
        load_dataset("imagefolder", tmp_path / "few", image_size=(0, 4))


def test_files_a_loader_cannot_read_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match=f"cannot load data set 'digits' from {tmp_path}"):
        load_dataset("digits", tmp_path)  # a folder where the shipped sets take an .npz
    np.savez(tmp_path / "nolabels.npz", images=np.zeros((4, 8, 8), dtype=np.uint8))
    with pytest.raises(ConfigError, match="cannot load data set 'digits' .*labels"):
        load_dataset("digits", tmp_path / "nolabels.npz")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in ("data_batch_1", "test_batch"):
            payload = tmp_path / name
            payload.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), dtype=np.uint8), b"labels": [0, 1]}))
            tar.add(payload, arcname=f"cifar-10-batches-py/{name}")
    archive.write_bytes(archive.read_bytes()[:-40])  # cut short
    with pytest.raises(ConfigError, match="cannot load data set 'cifar10'"):
        load_dataset("cifar10", archive)


def test_another_npz_for_a_shipped_set_is_checked(tmp_path):
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 17, (40, 8, 8)).astype(np.uint8), np.arange(40) % 4

    def npz(name, **arrays):
        path = tmp_path / f"{name}.npz"
        np.savez(path, **{"images": images, "labels": labels, **arrays})
        return path

    data = load_dataset("digits", npz("ok"))
    assert data.num_classes == 4 and sum(data.info["sizes"].values()) == 40
    floats = load_dataset("digits", npz("floats", images=images.astype(np.float64)))  # sklearn's digits are float64
    assert torch.equal(floats.train.images.float(), data.train.images.float())
    np.save(tmp_path / "one.npy", images)
    cases = [(tmp_path / "one.npy", "one.npy: one array, not an .npz archive"),
             (npz("neg", labels=labels - 1), "labels must be class numbers from 0"),
             (npz("one_class", labels=np.zeros(40, int)), "two classes or more"),
             (npz("short", labels=labels[:30]), "labels must be 40 integers (one per image), got int64 of shape [30]"),
             (npz("float", labels=labels + 0.7), "labels must be 40 integers (one per image), got float64"),
             (npz("flat", images=images.reshape(40, 64)), "images must be a non-empty N x H x W array of numbers"),
             (npz("bright", images=images * 15), "pixel values must lie in [0, 16] for this data set, got 0 to 240"),
             (npz("nan", images=np.where(images > 8, np.nan, images)), "pixel values must lie in [0, 16]"),
             (npz("bool", images=images > 8), "got bool of shape [40, 8, 8]")]
    for path, message in cases:
        with pytest.raises(ConfigError, match=re.escape(message)):
            load_dataset("digits", path)
    np.savez(tmp_path / "other.npz", x=images)
    with pytest.raises(ConfigError, match=r"from .*other.npz: no array 'images' or 'labels' \(it holds: x\)"):
        load_dataset("digits", tmp_path / "other.npz")


def test_image_folder_inputs_that_crashed_are_one_line_errors(tmp_path):
    root = tmp_path / "imgs"
    _npy_folder(root)
    with open(root / "cat" / "z.npy", "wb") as handle:  # an .npz archive under an .npy name
        np.savez(handle, x=np.zeros((6, 6), dtype=np.uint8))
    with pytest.raises(ConfigError, match="z.npy: an .npz archive, not one .npy array"):
        load_dataset("imagefolder", root)
    (root / "cat" / "z.npy").unlink()
    with pytest.raises(ConfigError, match="image_size must be two integers"):
        load_dataset("imagefolder", root, image_size=(100_000, 100_000))
    with pytest.raises(ConfigError, match="is a file: give the folder that holds one subfolder per class"):
        load_dataset("imagefolder", root / "cat" / "0.npy")
    named_train = tmp_path / "vehicles"
    _npy_folder(named_train, classes=("dog", "train"))
    with pytest.raises(ConfigError, match="a folder named 'train' is read as the train split"):
        load_dataset("imagefolder", named_train)


def test_a_decompression_bomb_is_a_one_line_error(tmp_path):
    image = pytest.importorskip("PIL.Image")
    _npy_folder(tmp_path)
    image.new("1", (20_000, 10_000)).save(tmp_path / "cat" / "bomb.png")  # 200 M pixels in a small file
    with pytest.raises(ConfigError, match="cannot read image .*bomb.png: Image size .* exceeds limit"):
        load_dataset("imagefolder", tmp_path)


@pytest.mark.parametrize("root", [123, b"folder", ["a"]])
def test_a_root_that_is_no_path_is_a_config_error(root):
    for name in ("imagefolder", "cifar10"):
        with pytest.raises(ConfigError, match=f"^data set '{name}': root must be a path \\(text\\), got"):
            load_dataset(name, root)  # a TypeError from os.fspath
