"""CI (.github/workflows/test.yml) runs the README's test command on Python 3.11 and 3.12, with pip caching."""
import re
import stat
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = THE_WORKFLOW = ROOT / ".github" / "workflows" / "test.yml"


def _workflow():
    data = yaml.safe_load(WORKFLOW.read_text())
    data["on"] = data.pop(True, data.get("on"))          # YAML 1.1 reads the key `on` as True
    return data


def readme_test_command() -> str:
    """The test command of the README's "Two commands" block: `make test    # ...`."""
    block = re.search(r"## Two commands\n.*?```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "README.md has no '## Two commands' section with a bash block"
    commands = [ln.split("#", 1)[0].strip() for ln in block.group(1).splitlines()]
    tests = [c for c in commands if "test" in c]
    assert len(tests) == 1, commands
    return tests[0]


def ci_script_commands() -> list[str]:
    lines = (ROOT / ".ci" / "run").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")
            and not ln.startswith(("set ", "cd "))]


def steps_running(job, command: str):
    return [s for s in job["steps"] if command in s.get("run", "")]


def test_ci_runs_the_readme_test_command_on_311_and_312():
    assert readme_test_command() == "make test"
    assert ci_script_commands() == ["make test"], ".ci/run must be exactly the README's test command"
    assert (ROOT / ".ci" / "run").stat().st_mode & stat.S_IXUSR, ".ci/run must be executable"
    wf = _workflow()
    assert {"push", "pull_request"} <= set(wf["on"])
    (job,) = wf["jobs"].values()
    assert [str(v) for v in job["strategy"]["matrix"]["python-version"]] == ["3.11", "3.12"]
    assert job["strategy"]["fail-fast"] is False, "one Python failing should not hide the other's result"
    assert steps_running(job, ".ci/run") or steps_running(job, "make test")
    assert 0 < job["timeout-minutes"] <= 120


def test_ci_caches_pip_by_pyproject_and_installs_a_browser():
    (job,) = _workflow()["jobs"].values()
    (setup,) = [s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python@")]
    assert setup["with"]["python-version"] == "${{ matrix.python-version }}"
    assert setup["with"]["cache"] == "pip" and setup["with"]["cache-dependency-path"] == "pyproject.toml"
    (browser,) = steps_running(job, "make chromium")
    assert "tools/find_chrome.py" in browser["run"], "CI should stop early when no browser could be installed"
    names = [s.get("name", s.get("uses")) for s in job["steps"]]
    assert names.index(browser["name"]) < [i for i, s in enumerate(job["steps"]) if ".ci/run" in s.get("run", "")][0]
    assert str(job.get("env", {}).get("CI", "")).lower() == "true"


def _with(tmp_path, change):
    data = yaml.safe_load(THE_WORKFLOW.read_text())
    change(next(iter(data["jobs"].values())))
    path = tmp_path / f"test-{len(list(tmp_path.iterdir()))}.yml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_the_checks_can_fail(tmp_path, monkeypatch):
    """A workflow without Python 3.12, or without the test command, and a README with another command fail."""
    def only_311(job):
        job["strategy"]["matrix"]["python-version"] = ["3.11"]

    def no_test_step(job):
        job["steps"] = [s for s in job["steps"] if ".ci/run" not in s.get("run", "")]

    for change in (only_311, no_test_step):
        monkeypatch.setitem(globals(), "WORKFLOW", _with(tmp_path, change))
        with pytest.raises(AssertionError):
            test_ci_runs_the_readme_test_command_on_311_and_312()
    monkeypatch.setitem(globals(), "WORKFLOW", _with(tmp_path, lambda job: None))
    test_ci_runs_the_readme_test_command_on_311_and_312()          # the unchanged copy passes
    (tmp_path / "README.md").write_text("## Two commands\n\n```bash\nmake lab\npytest   # tests\n```\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert readme_test_command() == "pytest"


# ---------------------------------------------------------------- the markers `make test-fast` relies on

class _Item:
    """What tests/conftest.py's pytest_collection_modifyitems reads from a collected item."""

    def __init__(self, path, name, fixturenames=()):
        self.path, self.name, self.originalname = Path(path), name, name.split("[")[0]
        self.fixturenames, self.marks = list(fixturenames), set()

    def add_marker(self, mark):
        self.marks.add(mark.name)


def test_conftest_marks_notebooks_frameworks_gpu_and_slow_tests():
    from conftest import pytest_collection_modifyitems

    items = {"cell": _Item("notebooks/00-introduction.ipynb", "Cell 3"),
             "tf": _Item("tests/test_ops_pool.py", "test_x[2]", ["rng", "tf"]),
             "keras": _Item("tests/test_layers.py", "test_y", ["keras"]),
             "cupy": _Item("tests/test_kernels_cupy.py", "test_gpu_whole_unet_matches_numpy[same-32]"),
             "interpreters": _Item("tests/test_architecture.py",
                                   "test_every_module_imports_alone_in_a_fresh_interpreter"),
             "plain": _Item("tests/test_ops_pool.py", "test_z", ["rng"])}
    pytest_collection_modifyitems(None, list(items.values()))
    assert {k: i.marks for k, i in items.items()} == {
        "cell": {"notebook"}, "tf": {"keras"}, "keras": {"keras"}, "cupy": {"gpu"},
        "interpreters": {"slow"}, "plain": set()}


def test_slow_tests_are_marked_where_they_are_written():
    import test_book
    import test_nbgrader
    import test_student

    def marks(fn):
        return {m.name for m in getattr(fn, "pytestmark", [])}

    assert {"browser", "slow"} <= marks(test_book.test_every_page_renders_offline_in_chromium)
    assert {"browser", "slow"} <= marks(test_book.test_screenshot_of_chapter_00)
    assert not marks(test_book.test_the_checks_can_fail)
    for name in dir(test_nbgrader):
        fn = getattr(test_nbgrader, name)
        if name.startswith("test_") and "graded" in fn.__code__.co_varnames[:fn.__code__.co_argcount]:
            assert {"slow", "notebook", "timeout"} <= marks(fn), name
    assert "notebook" in marks(test_student.test_one_student_copy_runs_and_its_checks_say_not_implemented_yet)


def test_every_test_conftest_marks_slow_still_exists():
    """A renamed test would silently come back into `make test-fast`: rename it in conftest._SLOW_TESTS too."""
    from conftest import _SLOW_TESTS

    for filename, name in sorted(_SLOW_TESTS):
        path = ROOT / "tests" / filename
        assert path.is_file() and f"def {name}(" in path.read_text(), \
            f"tests/conftest.py marks {filename}::{name} slow, but there is no such test"


def test_make_chromium_never_fails_where_there_is_no_apt_get(tmp_path):
    """A laptop without apt-get and without a browser (macOS, Fedora): `make test` goes on, saying why."""
    import os
    import shutil
    import subprocess
    import sys

    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    (tmp_path / "python3").symlink_to(sys.executable)            # PATH holds python3 and nothing else
    env = {k: v for k, v in os.environ.items() if k not in ("CHROME", "MAKEFLAGS", "MFLAGS")}
    env["PATH"] = str(tmp_path)
    proc = subprocess.run([make, "--no-print-directory", "chromium"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "will skip" in proc.stdout and "no Chrome or Chromium found" in proc.stderr
    assert "installing chromium" not in proc.stdout
