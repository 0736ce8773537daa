"""Every module imports on its own: no hidden circular import waits for a lucky order.

One subprocess walks every module of the four packages; before each import it forgets
every project module already loaded, so each is imported as if it came first.
"""

from __future__ import annotations

import subprocess
import sys

from tradearena.testing.paths import REPO

PACKAGES = ("tradearena", "lobby", "matchserver", "operator/match_operator")

SCRIPT = """
import importlib, pathlib, sys, traceback
repo = pathlib.Path(sys.argv[1])
roots = {"tradearena": repo, "lobby": repo, "matchserver": repo, "operator/match_operator": repo / "operator"}
ours = ("tradearena", "lobby", "matchserver", "match_operator")
failed, count = [], 0
for pkg, base in roots.items():
    for path in sorted((repo / pkg).rglob("*.py")):
        parts = path.relative_to(base).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for loaded in [m for m in sys.modules if m.split(".")[0] in ours]:
            del sys.modules[loaded]
        try:
            importlib.import_module(name)
            count += 1
        except Exception:
            failed.append(name + "\\n" + traceback.format_exc(limit=3))
print(count)
for f in failed:
    print("FAILED", f)
sys.exit(1 if failed else 0)
"""


def test_every_module_imports_alone() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(REPO)],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert int(done.stdout.split()[0]) > 100  # every module was found and imported
