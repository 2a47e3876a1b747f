"""The pure core stays pure: an import-linter contract (see pyproject.toml)."""

import subprocess
import sys

from helpers import ROOT


def test_pure_core_imports_no_database_network_or_clock():
    lint = ROOT / ".venv" / "bin" / "lint-imports"
    command = [str(lint)] if lint.exists() else [sys.executable, "-m", "importlinter.cli"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout
