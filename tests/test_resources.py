"""unet_scratch.resources.repo_path finds the repository's files from any working directory."""
import json
from pathlib import Path

import pytest

from unet_scratch.resources import repo_path, repo_root

ROOT = Path(__file__).resolve().parents[1]


def test_the_root_is_the_checkout():
    assert repo_root() == ROOT
    assert (repo_root() / "unet_scratch" / "resources.py").is_file()


@pytest.mark.parametrize("where", ["notebooks", "notebooks/zh", "tests", "/"])
def test_the_same_path_from_every_folder(monkeypatch, where):
    monkeypatch.chdir(ROOT / where if not where.startswith("/") else where)
    path = repo_path("benchmarks/results/skips.json")
    assert path == ROOT / "benchmarks" / "results" / "skips.json" and path.is_absolute()
    assert isinstance(json.loads(path.read_text()), dict)


def test_errors_say_what_to_do():
    with pytest.raises(FileNotFoundError, match=r"benchmarks/results/nope\.json is not in .*pip install -e \."):
        repo_path("benchmarks/results/nope.json")
    assert repo_path("benchmarks/results/nope.json", must_exist=False).name == "nope.json"
    for bad in ("/etc/passwd", "../outside.txt", "benchmarks/../../x"):
        with pytest.raises(ValueError, match="a path inside the repository"):
            repo_path(bad)


def test_a_copy_beside_the_notebook_is_found_when_the_checkout_lacks_the_file(monkeypatch, tmp_path):
    """An nbgrader release ships the files a chapter reads next to it (tools/make_nbgrader.py)."""
    shipped = tmp_path / "benchmarks" / "results" / "only-here.json"
    shipped.parent.mkdir(parents=True)
    shipped.write_text("{}")
    monkeypatch.chdir(tmp_path)
    assert repo_path("benchmarks/results/only-here.json") == shipped
    assert repo_path("benchmarks/results/skips.json") == ROOT / "benchmarks" / "results" / "skips.json"
