"""A study's trained weights stay inside ``<database>-weights/`` whatever the study is named."""
from __future__ import annotations

from pathlib import Path

from rlnas.cli.search import default_weights_dir, weights_folder_name


def test_plain_names_are_kept_and_others_stay_inside_the_weights_folder(tmp_path):
    assert weights_folder_name("nb201-l2nas-digits-0-1a2b3c") == "nb201-l2nas-digits-0-1a2b3c"
    names = ["../escape", "a/b", "a_b", "/abs", ".hidden", "..", "naïve name", "a\\b"]
    folders = [weights_folder_name(n) for n in names]
    assert len(set(folders)) == len(names)  # "a/b" and "a_b" do not share a folder
    database = tmp_path / "runs.db"
    for name in names:
        folder = Path(default_weights_dir(f"sqlite:///{database}", name)).resolve()
        assert folder.parent == Path(f"{database}-weights").resolve(), name
        assert not folder.name.startswith(".") and folder.name not in ("", "..")
    assert weights_folder_name("../escape").startswith("_escape-")
    assert Path(default_weights_dir("postgresql+psycopg://u@h/db", "../x")).parent == Path.cwd() / "rlnas-weights"


def test_the_weights_folder_is_stored_absolute_so_other_folders_find_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert default_weights_dir("sqlite:///sub/../runs.db", "s") == str(tmp_path / "runs.db-weights" / "s")


def test_the_longest_study_names_make_folders_the_file_system_takes(tmp_path):
    # a name of up to 255 characters is accepted; with characters replaced and the hash appended it was longer
    names = ["a b" * 85, "x" * 255, "é" * 255, "a b" * 84 + "c", "a/b" * 85]
    folders = [weights_folder_name(n) for n in names]
    assert len(set(folders)) == len(names) and all(len(f.encode()) <= 255 for f in folders)
    for folder in folders:
        (tmp_path / folder).mkdir()  # (raised "File name too long" for the first)


def test_a_second_folder_for_the_longest_name_fits_too(tmp_path):
    from rlnas.cli.search import study_weights_dir

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    name = "x" * 255
    first = Path(study_weights_dir(url, name))
    first.mkdir(parents=True)
    (first / "acc91.5000-3-0123456789abcdef.pt").write_bytes(b"w")  # another study's files: it needs another folder
    second = Path(study_weights_dir(url, name))
    assert second != first and second.name.endswith("-2") and len(second.name) == 255
    second.mkdir()  # ("File name too long": 257 bytes)
