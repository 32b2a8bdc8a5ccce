"""`make lab`: JupyterLab opens on chapter 00 without asking the student about Jupyter news.

tools/lab-overrides.json is copied by the Makefile's venv step to <prefix>/share/jupyter/lab/settings/
overrides.json, where JupyterLab reads setting overrides (`jupyter lab path`: "Application directory" +
/settings). These tests compose the settings the way JupyterLab's server does (jupyterlab_server), against
the schemas of the JupyterLab installed here, so a renamed setting or a wrong value fails.
"""
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OVERRIDES = ROOT / "tools" / "lab-overrides.json"
NOTIFICATION = "@jupyterlab/apputils-extension:notification"


def _defaults(settings_dir: Path):
    """The notification plugin's defaults as JupyterLab's server serves them with `settings_dir` overrides."""
    commands = pytest.importorskip("jupyterlab.commands", reason="JupyterLab not installed")
    from jupyterlab_server.settings_utils import get_settings

    app_dir = Path(commands.get_app_dir())
    result, _ = get_settings(str(settings_dir), str(app_dir / "schemas"), str(settings_dir / "user"),
                             schema_name=NOTIFICATION)
    return {k: v.get("default") for k, v in result["schema"]["properties"].items()}


def test_the_news_question_is_answered_never(tmp_path):
    assert _defaults(tmp_path)["fetchNews"] == "none", "JupyterLab's own default asks the student"
    overrides = json.loads(OVERRIDES.read_text())
    (tmp_path / "overrides.json").write_text(json.dumps(overrides))
    assert _defaults(tmp_path)["fetchNews"] == "false"


def test_the_makefile_installs_the_overrides_where_jupyterlab_reads_them():
    commands = pytest.importorskip("jupyterlab.commands", reason="JupyterLab not installed")
    app_dir = Path(commands.get_app_dir()).resolve()
    assert app_dir == Path(sys.prefix).resolve() / "share" / "jupyter" / "lab", app_dir
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^LAB_OVERRIDES := \$\(VENV\)/share/jupyter/lab/settings/overrides\.json$", makefile, re.M)
    assert re.search(r"^venv: .*\$\(LAB_OVERRIDES\)", makefile, re.M)
    lab = re.search(r"^lab: venv\n\t(.*)$", makefile, re.M).group(1)
    assert lab.endswith("notebooks/00-introduction.ipynb"), lab
    assert (ROOT / "notebooks" / "00-introduction.ipynb").is_file()
