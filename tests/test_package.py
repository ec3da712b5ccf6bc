"""The top-level package: lazy exports, and what ``import rlnas.cli`` loads and sets."""
import os
import subprocess
import sys

import pytest

import rlnas


def test_every_export_resolves_to_the_object_of_its_module():
    import rlnas.study
    import rlnas.trial

    assert set(rlnas.__all__) == {"__version__", *rlnas._MODULE_OF}
    for name in rlnas._MODULE_OF:
        assert getattr(rlnas, name) is getattr(sys.modules[rlnas._MODULE_OF[name]], name)
    assert rlnas.Study is rlnas.study.Study and rlnas.TrialState is rlnas.trial.TrialState
    assert {"Study", "create_study"} <= set(dir(rlnas))


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rlnas.nope  # noqa: B018


def run_python(code: str, **env: str) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env=dict(environ, **env)).stdout


def test_the_cli_loads_no_numpy_before_it_chose_one_blas_thread():
    out = run_python("import sys, os, rlnas.cli; "
                     "print('numpy' in sys.modules, os.environ['OPENBLAS_NUM_THREADS'])")
    assert out.split() == ["False", "1"]


def test_a_blas_thread_count_the_user_chose_is_kept():
    assert run_python("import os, rlnas.cli; print(os.environ['OPENBLAS_NUM_THREADS'])",
                      OPENBLAS_NUM_THREADS="2").strip() == "2"


def test_the_package_says_it_is_typed_and_its_lazy_names_are_typed_too():
    from importlib.resources import files

    import rlnas.optim

    assert files("rlnas").joinpath("py.typed").is_file()  # PEP 561, shipped by pyproject's package-data
    source = (files("rlnas.optim") / "__init__.py").read_text(encoding="utf-8")
    typed = source.split("if TYPE_CHECKING:")[1].split("\n\n")[0]
    assert all(name in typed for name in rlnas.optim._LAZY)


def test_the_license_files_the_metadata_names_exist():
    import ast
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    pyproject = (root / "pyproject.toml").read_text(encoding="utf-8")  # (tomllib: Python 3.11 and later only)
    assert '\nlicense = "Apache-2.0"\n' in pyproject
    assert (root / "LICENSE").read_text(encoding="utf-8").lstrip().startswith("Apache License")
    patterns = ast.literal_eval(re.search(r"^license-files = (\[.*?\])", pyproject, re.MULTILINE).group(1))
    assert "LICENSE" in patterns
    for pattern in patterns:
        assert list(root.glob(pattern)), pattern


def test_table_cells_show_small_numbers_with_significant_digits():
    from rlnas.cli._common import fmt

    assert [fmt(1e-4), fmt(3e-5, 4), fmt(0.0), fmt(94.37333), fmt(None)] == ["0.0001", "3e-05", "0.000", "94.373", "-"]
