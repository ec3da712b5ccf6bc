"""Every example of README.md and docs/ runs as written in a fresh folder (see doc_examples.py)."""
from __future__ import annotations

import pytest
from doc_examples import ROOT, examples, pages, run, strip_install


def _params():
    out = []
    for page in pages():
        found = examples(page)
        if found:
            marks = [pytest.mark.slow]  # each rlnas command starts Python, imports torch and searches
            out.append(pytest.param(page, id=str(page.relative_to(ROOT)), marks=marks))
    return out


@pytest.mark.parametrize("page", _params())
def test_examples_of_the_page_run(page, tmp_path) -> None:
    skipped = []
    for example in examples(page):
        if example.skip is not None:
            skipped.append(f"{example.id}: {example.skip}")
            continue
        if example.language == "bash" and any(part.strip().startswith("pytest")
                                              for part in strip_install(example.code.strip()).split("&&")):
            skipped.append(f"{example.id}: a pytest run (part of the test suite)")
            continue
        result = run(example, tmp_path)
        assert result.returncode == 0, (f"{example.id} failed (exit {result.returncode}):\n{example.code}\n"
                                        f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}")
    if skipped:
        print("not run:\n" + "\n".join(skipped))


def test_the_extractor_finds_commands_and_honours_marks(tmp_path) -> None:
    page = tmp_path / "p.md"
    page.write_text("```\noutput | table\n```\n\n```bash\nrlnas ls\n```\n<!-- docs-test: skip needs a GPU -->\n"
                    "```python\nimport torch\n```\n\n<!-- docs-test: slow -->\n```\npython x.py\n```\n")
    found = [(e.line, e.language, e.skip, e.slow) for e in examples_at(page)]
    assert found == [(5, "bash", None, False), (9, "python", "needs a GPU", False), (14, "bash", None, True)]
    readme = "python3.11 -m venv .venv && . .venv/bin/activate && pip install -q -e . && rlnas ls"
    assert strip_install(readme) == "rlnas ls"


def examples_at(page):
    import doc_examples

    original = doc_examples.ROOT
    doc_examples.ROOT = page.parent
    try:
        return examples(page)
    finally:
        doc_examples.ROOT = original
