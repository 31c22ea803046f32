#!/usr/bin/env python3
"""Set-up and everyday commands; needs nothing but python3.

    python3 tasks.py serve [--port N ...]   run the server on the embedded defaults
    python3 tasks.py test  [pytest args]    run the whole test suite
    python3 tasks.py bench [--smoke]        run the benchmark
    python3 tasks.py lint                   ruff, mypy, and the code's sizes

Each creates .venv in the checkout on first use and reinstalls when pyproject.toml changes.
"""

from __future__ import annotations

import ast
import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / "bin"
STAMP = VENV / ".microcourt-installed"


def ensure_venv() -> None:
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    print("installing dependencies into .venv ...", flush=True)
    subprocess.run(
        [str(BIN / "python"), "-m", "pip", "install", "-qq", "--upgrade", "pip"], check=True
    )
    subprocess.run(
        [str(BIN / "python"), "-m", "pip", "install", "-qq", "-e", ".[dev]"], check=True, cwd=ROOT
    )
    STAMP.write_text(wanted)


CHROMIUM = Path("/usr/bin/chromium")


def ensure_chromium() -> None:
    """The console's browser tests drive Debian's Chromium (Playwright downloads no browser);
    CJK fonts make the screenshots readable. CI runs as root with no stdin."""
    if CHROMIUM.exists():
        return
    print("installing chromium and fonts-noto-cjk (apt-get) ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update"], check=True, env=env, stdin=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "chromium", "fonts-noto-cjk"],
        check=True,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def run(argv: list[str]) -> int:
    os.chdir(ROOT)
    os.execv(argv[0], argv)  # replaces this process: signals go straight to the command


CODE = ("server", "handlers", "models", "miniapp_stubs", "bench")


def sizes() -> int:
    """Print the ten longest functions, the modules over 500 lines and the `# fmt: skip`s."""
    functions: list[tuple[int, str]] = []
    modules: list[tuple[int, str]] = []
    skips = 0
    for path in sorted(p for d in CODE for p in (ROOT / d).rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        name = str(path.relative_to(ROOT))
        modules.append((len(text.splitlines()), name))
        skips += text.count("# fmt: skip")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                functions.append((length, f"{name}:{node.lineno} {node.name}"))
    print("ten longest functions (lines):")
    for length, where in sorted(functions, reverse=True)[:10]:
        print(f"  {length:4d}  {where}")
    print(
        "modules over 500 lines:", ", ".join(f"{n} ({c})" for c, n in modules if c > 500) or "none"
    )
    tests = sum(
        p.read_text(encoding="utf-8").count("# fmt: skip") for p in ROOT.glob("tests/**/*.py")
    )
    print(f"'# fmt: skip' markers: {skips} in the code, {tests} in tests/")
    return 0


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in {"serve", "test", "bench", "lint"}:
        print(__doc__)
        return 2
    command, rest = sys.argv[1], sys.argv[2:]
    ensure_venv()
    if command == "serve":
        return run([str(BIN / "microcourt"), "serve", *rest])
    if command == "test":
        ensure_chromium()
        return run([str(BIN / "python"), "-m", "pytest", *rest])
    if command == "bench":
        return run([str(BIN / "python"), "-m", "bench", *rest])
    code = subprocess.call([str(BIN / "ruff"), "check", "."])
    code |= subprocess.call([str(BIN / "ruff"), "format", "--check", "."])
    code |= subprocess.call([str(BIN / "mypy")])
    return code | sizes()


if __name__ == "__main__":
    sys.exit(main())
