"""The layers of pyproject.toml's [tool.importlinter] hold on the code, and a wrong import
breaks them: each case below copies the package, adds one import that crosses a layer, and
``lint-imports`` must name the contract it breaks (docs/architecture.md, "Layers")."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import giftwave

PACKAGE = Path(giftwave.__file__).resolve().parent  # the giftwave under test
ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
TIMEOUT_S = 300


def _lint(src: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` with pyproject.toml's contracts on the package found in ``src``."""
    shutil.copy(ROOT / "pyproject.toml", cwd / "pyproject.toml")
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )


def test_the_code_keeps_every_contract(tmp_path: Path) -> None:
    done = _lint(PACKAGE.parent, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "wrong_import", "contract"),
    [
        ("live/room.py", "from giftwave.webhooks import outbox", "events flow one way"),
        ("ledger/model.py", "import fastapi", "below the faces"),
        ("realtime/hub.py", "from giftwave.economy import wallets", "realtime knows no money"),
        ("ledger/planner.py", "from giftwave import clock", "the ledger imports nothing"),
        ("api/problems.py", "from giftwave.web.pages import site", "problem+json knows no page"),
        ("api/streams.py", "from giftwave.web.pages import site", "the JSON API imports no page"),
    ],
)
def test_a_wrong_import_breaks_its_contract(
    tmp_path: Path, module: str, wrong_import: str, contract: str
) -> None:
    src = tmp_path / "src"
    shutil.copytree(
        PACKAGE,
        src / "giftwave",
        ignore=shutil.ignore_patterns("__pycache__", "static", "locale", "templates"),
    )
    path = src / "giftwave" / module
    path.write_text(path.read_text() + f"\n{wrong_import}  # crosses a layer\n")
    done = _lint(src, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    # "<name> BROKEN", or "<name> BROKEN (n ignored imports)"
    broken = [line for line in done.stdout.splitlines() if " BROKEN" in line]
    assert len(broken) >= 1, done.stdout
    assert any(line.startswith(contract) for line in broken), done.stdout
