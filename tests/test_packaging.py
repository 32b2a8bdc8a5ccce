"""The conda environment and pyproject.toml must name the same packages with the same version pins, so
they cannot drift; the checker is fed drifted files to show that it fails and names the package."""
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement          # installed with pytest (one of its dependencies)
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]

# extras that environment.yml deliberately leaves out, and why; every other extra must be in it
ENV_LEAVES_OUT = {"gpu": "CuPy needs a CUDA machine; conda users add cupy themselves",
                  "gpu-cuda12": "CuPy for a CUDA 12 driver, as gpu", "gpu-cuda13": "CuPy for a CUDA 13 driver, as gpu",
                  "nbgrader": "instructors' grading tools, not needed by students",
                  "all": "a meta-extra naming the others"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ;]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pin(req: str) -> SpecifierSet:
    """The version constraint of a pip requirement or a conda match spec ("numpy>=2.4", "python=3.11")."""
    spec = req.strip()[len(_name(req)):].split(";", 1)[0].strip()
    spec = re.sub(r"^\[[^\]]*\]", "", spec).strip()            # extras: pkg[x]>=1
    if re.fullmatch(r"=[^=<>!~,]+", spec):                      # conda's "=3.11" means "==3.11.*"
        spec = "=" + spec + ("" if spec.endswith("*") else ".*")
    return SpecifierSet(spec)


def _pyproject():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = data["project"]
    extras = project["optional-dependencies"]
    return project, extras


def _environment_entries(text):
    """environment.yml's dependency strings (conda and pip sections), without pip itself and '-e .'."""
    entries = []
    for line in text.split("dependencies:", 1)[1].splitlines():
        line = line.split("#", 1)[0].rstrip()
        m = re.match(r"^\s*-\s+(.+)$", line)
        if not m:
            continue
        entry = m.group(1).strip()
        if entry in ("pip", "pip:") or entry.startswith("-e") or entry.startswith("--"):
            continue
        entries.append(entry)
    return entries


def environment_drift(env_text: str, project: dict) -> list:
    """What differs between environment.yml (its text) and pyproject.toml's [project] table: packages
    only on one side, version pins that differ, a Python that requires-python excludes. Each problem
    names the package and the fix; an empty list means no drift."""
    extras = project.get("optional-dependencies", {})
    wanted = {}
    for req in project.get("dependencies", []) + [r for extra, reqs in extras.items()
                                                  if extra not in ENV_LEAVES_OUT for r in reqs]:
        wanted[_name(req)] = _pin(req)
    have, python = {}, None
    for entry in _environment_entries(env_text):
        if _name(entry) == "python":
            python = entry
        else:
            have[_name(entry)] = _pin(entry)
    problems = [f"{n}: only in environment.yml ({n}{have[n]}); add it to pyproject.toml or remove it"
                for n in sorted(have.keys() - wanted.keys())]
    problems += [f"{n}: only in pyproject.toml ({n}{wanted[n]}); add it to environment.yml"
                 for n in sorted(wanted.keys() - have.keys())]
    problems += [f"{n}: environment.yml pins '{have[n]}', pyproject.toml '{wanted[n]}'; make them equal"
                 for n in sorted(have.keys() & wanted.keys()) if have[n] != wanted[n]]
    requires = project.get("requires-python")
    if python is None:
        problems.append("python: environment.yml names no python version; add e.g. python=3.11")
    elif requires:
        version = re.sub(r"[^0-9.]", "", python[len("python"):]).strip(".")
        if not SpecifierSet(requires).contains(version):
            problems.append(f"python: environment.yml's {python} is outside requires-python '{requires}'")
    return problems


def test_environment_matches_pyproject():
    project, _ = _pyproject()
    problems = environment_drift((ROOT / "environment.yml").read_text(), project)
    assert not problems, "environment.yml and pyproject.toml drifted:\n" + "\n".join(problems)


def test_all_extra_covers_the_course_extras():
    _, extras = _pyproject()
    (all_req,) = extras["all"]
    named = set(re.search(r"\[(.*)\]", all_req).group(1).split(","))
    gpu = {"gpu", "gpu-cuda12", "gpu-cuda13"}
    assert named == set(extras) - {"all"} - gpu, f"the all extra names {sorted(named)}, not every extra but gpu"
    for extra in gpu:
        assert all(_name(r).startswith("cupy") and "[ctk]" in r for r in extras[extra]), extras[extra]


ENV = """name: t
dependencies:
  - python=3.11
  - pip
  - numpy>=2.4
  - jupyter-book>=1.0.4,<2
  - pip:
      - tensorflow>=2.21
      - -e .
"""
PROJECT = {"requires-python": ">=3.11", "dependencies": ["numpy>=2.4"],
           "optional-dependencies": {"keras": ["tensorflow>=2.21"], "book": ["jupyter-book>=1.0.4,<2"],
                                     "gpu": ["cupy-cuda12x>=14"], "all": ["unet_scratch[keras,book]"]}}


def test_checker_accepts_files_that_agree():
    assert environment_drift(ENV, PROJECT) == []
    assert environment_drift(ENV.replace("numpy>=2.4", "NumPy >=2.4"), PROJECT) == []    # conda spelling


@pytest.mark.parametrize("env,project,expected", [
    (ENV.replace("  - pip\n", "  - pip\n  - rich>=13\n"), PROJECT, r"^rich: only in environment\.yml"),
    (ENV.replace("      - tensorflow>=2.21\n", ""), PROJECT, r"^tensorflow: only in pyproject\.toml"),
    (ENV, {**PROJECT, "dependencies": ["numpy>=2.4", "scipy>=1.16"]}, r"^scipy: only in pyproject\.toml"),
    (ENV.replace("numpy>=2.4", "numpy>=2.3"), PROJECT, r"^numpy: environment\.yml pins '>=2\.3', pyproject"),
    (ENV.replace("<2", "<3"), PROJECT, r"^jupyter-book: environment\.yml pins"),
    (ENV, {**PROJECT, "requires-python": ">=3.12"}, r"^python: environment\.yml's python=3\.11 is outside"),
    (ENV.replace("  - python=3.11\n", ""), PROJECT, r"^python: environment\.yml names no python"),
])
def test_checker_reports_drift_naming_the_package(env, project, expected):
    problems = environment_drift(env, project)
    assert len(problems) == 1 and re.search(expected, problems[0]), problems


def test_checker_ignores_the_extras_the_environment_leaves_out():
    """gpu and all are in PROJECT but not in ENV, on purpose (ENV_LEAVES_OUT); a new extra is not."""
    assert environment_drift(ENV, {**PROJECT, "optional-dependencies": {
        **PROJECT["optional-dependencies"], "plots": ["seaborn>=0.13"]}}) == [
        "seaborn: only in pyproject.toml (seaborn>=0.13); add it to environment.yml"]


def test_name_and_pin_parsing():
    assert _name("tensorflow>=2.21") == "tensorflow" and _name("pytest_timeout>=2") == "pytest-timeout"
    assert _pin("jupyter-book>=1.0.4,<2") == SpecifierSet("<2,>=1.0.4")
    assert _pin("python=3.11").contains("3.11.9") and not _pin("python=3.11").contains("3.12")
    assert _pin("numpy") == SpecifierSet("")


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert "make test" in ci
    assert "make test" in readme and "make lab" in readme
