"""Item 1: CIFAR batches are parsed, never unpickled; crafted files are refused, not run.

A restricted unpickler that lets ``numpy.dtype`` and ``numpy.ndarray`` through can be made to
build an object array over bytes the file controls: touching it dereferences those bytes as
pointers (SIGSEGV). Every malicious payload therefore runs in a child process, so a crash
fails the test instead of killing the test run.
"""
from __future__ import annotations

import pickle
import struct
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

from rlnas.datasets import load_dataset
from rlnas.datasets.cifar import read_batch
from rlnas.datasets.plain_pickle import load_plain
from rlnas.errors import ConfigError


# ------------------------------------------------------------------ crafting pickles by hand
def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _binbytes(data: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(data)) + data


def _binunicode(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _int(value: int) -> bytes:
    return b"J" + struct.pack("<i", value)


def _array_pickle(typestr: str, shape: tuple[int, ...], raw: bytes, dtype_flags: int = 0,
                  reconstruct: str = "numpy.core.multiarray") -> bytes:
    """A protocol-2 pickle of ``{b"data": <array>, b"labels": [1]}`` spelled out opcode by opcode,
    with the array's dtype string, flags and raw bytes chosen by the caller."""
    shape_tuple = b"(" + b"".join(_int(n) for n in shape) + b"t"
    dtype = (_global("numpy", "dtype") + _binunicode(typestr) + b"\x89\x88\x87R"
             + b"(" + _int(3) + _binunicode("|") + b"NNN" + _int(-1) + _int(-1) + _int(dtype_flags) + b"tb")
    array = (_global(reconstruct, "_reconstruct") + _global("numpy", "ndarray") + _int(0) + b"\x85"
             + _binbytes(b"b") + b"\x87R" + b"(" + _int(1) + shape_tuple + dtype + b"\x89" + _binbytes(raw) + b"tb")
    return b"\x80\x02}(" + _binbytes(b"data") + array + _binbytes(b"labels") + b"]" + _int(1) + b"au."


def _python2_batch(images: np.ndarray, labels: list[int]) -> bytes:
    """A batch as Python 2's cPickle wrote the official files: Python 2 strings (SHORT_BINSTRING
    and BINSTRING), ``numpy.core.multiarray._reconstruct`` and memo puts everywhere."""
    def string(data: bytes) -> bytes:
        return (b"U" + bytes([len(data)]) if len(data) < 256 else b"T" + struct.pack("<I", len(data))) + data

    n = images.shape[0]
    return (b"\x80\x02}q\x01(" + string(b"data") + b"q\x02" + _global("numpy.core.multiarray", "_reconstruct")
            + b"q\x03" + _global("numpy", "ndarray") + b"q\x04K\x00\x85" + string(b"b") + b"\x87Rq\x05(K\x01"
            + _int(n) + _int(3072) + b"\x86" + _global("numpy", "dtype") + b"q\x06" + string(b"u1")
            + b"K\x00K\x01\x87Rq\x07(K\x03" + string(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89"
            + string(images.tobytes()) + b"tb" + string(b"labels") + b"q\x08]q\x09("
            + b"".join(_int(v) for v in labels) + b"e" + string(b"batch_label") + string(b"training batch 1 of 5")
            + b"u.")


OBJECT_ARRAY = _array_pickle("O8", (1,), b"\x41" * 8)
"""An object array whose single pointer is 0x4141414141414141: reading it crashed rlnas."""


def _parse_in_child(payloads: dict[str, bytes], tmp_path: Path) -> dict[str, str]:
    """Parse each payload as a CIFAR batch in one fresh interpreter: ``name -> "LOADED ..."`` or
    ``"REFUSED <message>"``. A crash fails with the name of the payload that caused it."""
    names = sorted(payloads)
    for i, name in enumerate(names):
        (tmp_path / f"payload{i}").write_bytes(payloads[name])
    code = textwrap.dedent("""
        import sys
        from rlnas.datasets.cifar import read_batch
        from rlnas.errors import ConfigError
        for path in sys.argv[1:]:
            try:
                images, labels = read_batch(open(path, 'rb').read(), 'batch')
                print('LOADED', images.dtype, images.shape, labels.tolist(), flush=True)
            except ConfigError as err:
                print('REFUSED', err, flush=True)
    """)
    paths = [str(tmp_path / f"payload{i}") for i in range(len(names))]
    result = subprocess.run([sys.executable, "-c", code, *paths], check=False, capture_output=True, text=True,
                            timeout=300)
    lines = result.stdout.splitlines()
    if result.returncode != 0:
        raise AssertionError(f"the child died with {result.returncode} on payload {names[len(lines)]!r}: "
                             f"{result.stderr[-500:]}")
    return dict(zip(names, lines))


# ------------------------------------------------------------------------------ the crash
def test_an_object_array_batch_is_refused_in_a_child_process(tmp_path):
    outcome = _parse_in_child({"object array": OBJECT_ARRAY}, tmp_path)["object array"]
    assert outcome.startswith("REFUSED batch is not a CIFAR python batch: refusing NumPy dtype 'O8'")


def test_rlnas_search_on_a_crafted_cifar_folder_exits_with_one_line(tmp_path, rlnas_bin):
    data = tmp_path / "cifar"
    data.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (data / name).write_bytes(OBJECT_ARRAY)
    result = subprocess.run([rlnas_bin, "search", "--space", "nb201", "--evaluator", "train", "--dataset", "cifar10",
                             "--data-root", str(data), "--agent", "random", "--trials", "1", "--no-progress",
                             "--storage", f"sqlite:///{tmp_path / 'runs.db'}"],
                            check=False, capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, (result.returncode, result.stderr[-800:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "refusing NumPy dtype 'O8'" in lines[0] and "Traceback" not in result.stderr


# Payloads that must be refused: each names what it tried. None of them may crash the child.
HOSTILE = {
    "object dtype": (OBJECT_ARRAY, "refusing NumPy dtype 'O8'"),
    "object flags on a uint8 dtype": (_array_pickle("u1", (8,), bytes(8), dtype_flags=0x3f), None),
    "structured dtype": (_array_pickle("V8", (1,), bytes(8)), "refusing NumPy dtype 'V8'"),
    "too few bytes for the shape": (_array_pickle("u1", (4, 3072), bytes(10)), "with 10 bytes of data"),
    "os.system": (b"\x80\x02" + _global("os", "system") + _binunicode("echo hacked") + b"\x85R.",
                  "refusing to load os.system"),
    "builtins.eval via STACK_GLOBAL": (b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x041+1\x85R.",
                                       "refusing to load builtins.eval"),
    "ndarray called directly": (b"\x80\x02" + _global("numpy", "ndarray") + b"K\x01\x85R.", "a call to ndarray"),
    "object array state as a list": (_array_pickle("u1", (1,), b"x").replace(_binbytes(b"x"), b"]K\x01a"),
                                     "not raw bytes"),
    "persistent id": (b"\x80\x02X\x01\x00\x00\x00xQ.", "refusing pickle opcode BINPERSID"),
    "extension registry": (b"\x80\x02\x82\x01.", "refusing pickle opcode EXT1"),
    "truncated": (OBJECT_ARRAY[:40], "not a valid pickle"),
    "not a dict": (pickle.dumps([1, 2, 3], protocol=2), "needs keys b'data' and b'labels'"),
    "float images": (pickle.dumps({b"data": np.zeros((1, 3072), np.float32), b"labels": [1]}), "must be a uint8 array"),
    "label out of range": (pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}), "ints 0..9"),
    "self-referencing list": (b"\x80\x02}(" + _binbytes(b"data") + b"]q\x00h\x00a" + _binbytes(b"labels")
                              + b"]u.", "must be a uint8 array"),
}


def test_hostile_payloads_are_refused_with_a_reason(tmp_path):
    outcomes = _parse_in_child({name: payload for name, (payload, _) in HOSTILE.items()}, tmp_path)
    for name, (_, reason) in HOSTILE.items():
        assert outcomes[name].startswith("REFUSED"), (name, outcomes[name])
        assert reason is None or reason in outcomes[name], (name, outcomes[name])
        assert "hacked" not in outcomes[name]


# ------------------------------------------------------------------- real formats still load
@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_plain_data_round_trips_in_every_protocol(protocol):
    rng = np.random.default_rng(protocol)
    value = {
        b"data": rng.integers(0, 256, size=(3, 3072), dtype=np.uint8),
        b"labels": [0, 9, 4],
        "floats": rng.normal(size=(2, 3)).astype(">f4"),
        "fortran": np.asfortranarray(rng.integers(-5, 5, size=(3, 4))),
        "flags": np.array([True, False]),
        "empty": np.zeros((0, 7), np.int16),
        "scalars": (1.5, -2, 2**70, None, True, "text", b"bytes"),
        "nested": {"list": [[1, 2], {"k": b"v"}]},
    }
    loaded = load_plain(pickle.dumps(value, protocol=protocol))
    assert loaded.keys() == value.keys()
    for key, expected in value.items():
        if isinstance(expected, np.ndarray):
            assert loaded[key].dtype == expected.dtype and loaded[key].flags.writeable
            np.testing.assert_array_equal(loaded[key], expected)
        else:
            assert loaded[key] == expected


def test_a_python2_batch_as_the_official_files_are_written_loads():
    images = np.random.default_rng(0).integers(0, 256, size=(5, 3072), dtype=np.uint8)
    got_images, got_labels = read_batch(_python2_batch(images, [3, 1, 4, 1, 5]), "data_batch_1")
    assert got_labels.tolist() == [3, 1, 4, 1, 5]
    np.testing.assert_array_equal(got_images, images.reshape(5, 3, 32, 32))


def test_the_official_layout_loads_from_a_folder_and_a_tar(tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        images = rng.integers(0, 256, size=(10, 3072), dtype=np.uint8)
        (folder / name).write_bytes(_python2_batch(images, list(range(10))))
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=folder.name)
    from_folder = load_dataset("cifar10", tmp_path, valid_fraction=0.2)
    from_tar = load_dataset("cifar10", archive, valid_fraction=0.2)
    assert from_folder.info["sizes"] == {"train": 40, "valid": 10, "test": 10}
    assert (from_folder.train.images == from_tar.train.images).all()


def test_refusal_messages_are_one_line():
    with pytest.raises(ConfigError) as err:
        read_batch(OBJECT_ARRAY[:-1] + b"\x00", "x")
    assert "\n" not in str(err.value)
