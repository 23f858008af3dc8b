"""Set up a private Python environment in `.venv` and run the app or the tests.

    python scripts/bootstrap.py demo     # install, then open the app on the built-in demo
    python scripts/bootstrap.py test     # install with test tools, then check and test:
                                         # ruff, lint-imports (the layers), mypy, pytest
    python scripts/bootstrap.py run ...  # install, then `python main.py ...`
    python scripts/bootstrap.py package  # install with build tools, then build the package
                                         # and its archive into dist/ (packaging/build.py)

Works the same on Windows, macOS and Linux; needs only Python 3.11 or newer.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"


def venv_python() -> Path:
    if os.name == "nt":
        return VENV / "Scripts" / "python.exe"
    return VENV / "bin" / "python"


def venv_script(name: str) -> Path:
    """A command the environment installed (lint-imports, ...)."""
    if os.name == "nt":
        return VENV / "Scripts" / f"{name}.exe"
    return VENV / "bin" / name


def ensure_environment(extra: str | None = None) -> Path:
    """Create .venv if needed and install the project (and an extra: test, package) in it."""
    if sys.version_info < (3, 11):  # noqa: UP036 - run by whatever python the user has
        sys.exit(f"Python 3.11 or newer is needed (this is {sys.version.split()[0]}).")
    python = venv_python()
    if not python.exists():
        print("Creating the environment in .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    target = f".[{extra}]" if extra else "."
    print(f"Installing {target} ...", flush=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                   cwd=ROOT, check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "-e", target],
                   cwd=ROOT, check=True)
    return python


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "demo"
    if command == "test":
        python = ensure_environment("test")
        env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM",
                                                                "offscreen")}
        subprocess.run([str(python), "-m", "ruff", "check", "."], cwd=ROOT, check=True)
        # the layers of app/ ([tool.importlinter] in pyproject.toml)
        subprocess.run([str(venv_script("lint-imports"))], cwd=ROOT, check=True)
        # the types of app/ ([tool.mypy] in pyproject.toml)
        subprocess.run([str(python), "-m", "mypy"], cwd=ROOT, check=True)
        return subprocess.run([str(python), "-m", "pytest", *argv[1:]], cwd=ROOT,
                              env=env).returncode
    if command == "demo":
        python = ensure_environment()
        return subprocess.run([str(python), "main.py", "--demo", *argv[1:]],
                              cwd=ROOT).returncode
    if command == "run":
        python = ensure_environment()
        return subprocess.run([str(python), "main.py", *argv[1:]], cwd=ROOT).returncode
    if command == "package":
        python = ensure_environment("package")
        return subprocess.run([str(python), str(ROOT / "packaging" / "build.py"), *argv[1:]],
                              cwd=ROOT).returncode
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
