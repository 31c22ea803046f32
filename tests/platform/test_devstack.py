"""The emulator is imported only by the development stack, and the development stack only
when something is embedded or emulated: never by code that runs in production."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import importlib, json, pkgutil, sys
import server
import server.app, server.cli, server.main
names = sorted(m.name for m in pkgutil.walk_packages(server.__path__, "server."))
for name in names:
    if name != "server.devstack":
        importlib.import_module(name)
production = sorted(m for m in sys.modules if m.split(".")[0] == "miniapp_stubs")
devstack_loaded = "server.devstack" in sys.modules
importlib.import_module("server.devstack")
with_devstack = sorted(m for m in sys.modules if m.split(".")[0] == "miniapp_stubs")
print(json.dumps([len(names), production, devstack_loaded, with_devstack]))
"""


def test_production_modules_never_import_the_emulator() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, check=True
    )
    count, production, devstack_loaded, with_devstack = json.loads(out.stdout)
    assert count > 50  # every module of every package was imported
    assert production == []
    assert devstack_loaded is False
    assert with_devstack == []  # the emulator itself is imported only when started
