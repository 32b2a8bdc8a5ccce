"""The conda environment and pyproject.toml must name the same packages, so they cannot drift."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = data["project"]
    extras = project["optional-dependencies"]
    return project, extras


def _environment_packages():
    """Package names in environment.yml (conda and pip sections), without python, pip and '-e .'."""
    names = set()
    text = (ROOT / "environment.yml").read_text()
    for line in text.split("dependencies:", 1)[1].splitlines():
        line = line.split("#", 1)[0].rstrip()
        m = re.match(r"^\s*-\s+(\S+)$", line)
        if not m or m.group(1) in ("pip", "pip:", "-e", ".") or m.group(1).startswith("-e"):
            continue
        names.add(_name(m.group(1)))
    names.discard("python")
    names.discard("pip")
    return names


def test_environment_matches_pyproject():
    project, extras = _pyproject()
    wanted = {_name(r) for r in project["dependencies"]}
    for extra in ("keras", "numba", "notebooks", "dev", "book"):
        wanted |= {_name(r) for r in extras[extra]}
    env = _environment_packages()
    assert env == wanted, (f"only in environment.yml: {sorted(env - wanted)}; "
                           f"only in pyproject.toml: {sorted(wanted - env)}")


def test_all_extra_covers_the_course_extras():
    _, extras = _pyproject()
    (all_req,) = extras["all"]
    named = set(re.search(r"\[(.*)\]", all_req).group(1).split(","))
    assert named == {"keras", "numba", "notebooks", "dev", "book"}, named
    assert extras["gpu"] == ["cupy-cuda12x>=14"]


def test_comparison_catches_drift():
    """The checker itself can fail: a package missing from one side is reported."""
    assert _name("tensorflow>=2.21") == "tensorflow"
    assert _name("pytest_timeout>=2") == "pytest-timeout"
    env = _environment_packages()
    assert "tensorflow" in env and "numpy" in env
    assert env - {"tqdm"} != env


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci
    assert "make test" in readme and "make lab" in readme
