"""Writing an output in one step: the longest file names, and nothing left by a write that fails."""
import os

import pytest

from rlnas.files import replacing, write_atomically


@pytest.mark.parametrize("length", [200, 241, 242, 250, 255])
def test_an_output_whose_name_is_as_long_as_a_file_name_may_be(tmp_path, length):
    # the temporary file next to it was 14 bytes longer than the target: names of 242 to 255 bytes were refused
    target = tmp_path / ("f" * (length - 5) + ".json")
    write_atomically(target, b"{}")
    assert target.read_bytes() == b"{}" and os.listdir(tmp_path) == [target.name]


def test_a_failed_write_leaves_neither_its_temporary_file_nor_the_folders_it_made(tmp_path):
    (tmp_path / "kept").mkdir()
    with pytest.raises(KeyboardInterrupt), replacing(tmp_path / "kept" / "new" / "deeper" / "out.onnx") as temporary:
        temporary.write_bytes(b"half")
        raise KeyboardInterrupt  # Ctrl-C (or SIGTERM) mid-write
    assert os.listdir(tmp_path) == ["kept"] and os.listdir(tmp_path / "kept") == []


def test_a_folder_name_too_long_leaves_none_of_the_folders_made_before_it(tmp_path):
    with pytest.raises(OSError, match="too long"), replacing(tmp_path / "new" / ("d" * 300) / "t.csv"):
        pass
    assert os.listdir(tmp_path) == []  # ("new" was left)
