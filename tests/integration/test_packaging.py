"""The wheel carries the top-level config/ and templates/, and mailtriage finds
them both there and in this checkout (the single source: no copy in mailtriage/).

The wheel is built once for the module (pip, with build isolation, so the
build uses what `[build-system]` asks for), from a copy of the sources so
that the checkout gets no build/ or *.egg-info.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from helpers import ROOT

pytestmark = pytest.mark.packaging

SOURCES = ("pyproject.toml", "README.md", "mailtriage", "config", "templates")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(ROOT / name, source / name)
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp / "dist"),
                             str(source)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    [built] = (tmp / "dist").glob("mailtriage-*.whl")
    return built


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts}


def test_the_wheel_carries_config_and_every_template(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "mailtriage/_defaults/config/mailtriage.yaml" in names
    assert "mailtriage/_defaults/config/rules.yaml" in names
    fixtures = files_under(ROOT / "config" / "rules-fixtures")      # `init` copies them beside rules.yaml
    assert fixtures and {f"mailtriage/_defaults/config/rules-fixtures/{name}" for name in fixtures} <= names
    templates = files_under(ROOT / "templates")
    assert {"acknowledgement.txt", "report_sla.html"} <= templates
    assert {f"mailtriage/_defaults/templates/{name}" for name in templates} <= names
    # Every module of the checkout: pyproject.toml lists the packages by hand.
    assert {f"mailtriage/{name}" for name in files_under(ROOT / "mailtriage")} <= names
    assert not [name for name in names if name.startswith("mailtriage/defaults/")]


def test_an_installed_wheel_finds_its_own_copies(wheel: Path, tmp_path: Path) -> None:
    site_packages = tmp_path / "site-packages"
    zipfile.ZipFile(wheel).extractall(site_packages)      # what pip does with a pure-Python wheel
    env = {**os.environ, "PYTHONPATH": str(site_packages)}
    script = "from mailtriage.config.builtin import builtin; print(builtin('config')); print(builtin('templates'))"
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    config, templates = map(Path, result.stdout.split())
    assert config == site_packages / "mailtriage" / "_defaults" / "config"
    assert templates == site_packages / "mailtriage" / "_defaults" / "templates"
    assert (config / "rules.yaml").is_file() and (templates / "report_sla.html").is_file()


def test_a_checkout_uses_the_top_level_folders_and_holds_no_copy() -> None:
    """The editable install (and PYTHONPATH on a checkout) reads the repository's folders."""
    from mailtriage.config.builtin import builtin

    assert builtin("config") == ROOT / "config"
    assert builtin("templates") == ROOT / "templates"
    assert not (ROOT / "mailtriage" / "defaults").exists()
    assert not (ROOT / "mailtriage" / "_defaults").exists()
