"""Find Chrome or Chromium for the website test (tests/test_book.py) on Linux and macOS.

    python tools/find_chrome.py      # prints the browser's path, or says how to install one (exit 1)

Looks at, in order: the ``CHROME`` environment variable (a path or a command name), the commands
``chromium``, ``chromium-browser``, ``google-chrome``, ``google-chrome-stable`` on PATH, and the macOS
applications ``/Applications/Google Chrome.app`` and ``/Applications/Chromium.app`` (also under
``~/Applications``). Standard library only: the Makefile runs it before the virtual environment exists.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

COMMANDS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
MAC_APPS = ("Google Chrome.app/Contents/MacOS/Google Chrome", "Chromium.app/Contents/MacOS/Chromium")
HOW_TO_INSTALL = ("install one: Debian/Ubuntu `sudo apt-get install chromium` (or `make chromium`), "
                  "macOS Google Chrome or `brew install --cask chromium`; or point the CHROME environment "
                  "variable at a Chrome/Chromium executable")


def _executable(path) -> bool:
    return Path(path).is_file() and os.access(path, os.X_OK)


def candidates(home: Path | None = None) -> list[str]:
    """Every name and path looked at after CHROME, in order."""
    home = Path.home() if home is None else home
    return [*COMMANDS, *(str(Path("/Applications") / app) for app in MAC_APPS),
            *(str(home / "Applications" / app) for app in MAC_APPS)]


def find_chrome(env=None, which=shutil.which, home: Path | None = None) -> str | None:
    """The path of a Chrome/Chromium executable, or None when there is none.

    Raises ValueError when ``CHROME`` is set but names nothing executable (a typo should not silently
    fall back to another browser, or to skipping the test).
    """
    env = os.environ if env is None else env
    wanted = env.get("CHROME", "").strip()
    if wanted:
        found = which(wanted) or (wanted if _executable(wanted) else None)
        if not found:
            raise ValueError(f"CHROME={wanted!r} is not an executable file or a command on PATH; "
                             "unset it or point it at Chrome/Chromium")
        return found
    for name in candidates(home):
        found = which(name) if "/" not in name else (name if _executable(name) else None)
        if found:
            return found
    return None


def main() -> int:
    try:
        path = find_chrome()
    except ValueError as e:
        print(e, file=sys.stderr)
        return 1
    if path is None:
        print(f"no Chrome or Chromium found (looked for {', '.join(candidates())}); {HOW_TO_INSTALL}",
              file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
