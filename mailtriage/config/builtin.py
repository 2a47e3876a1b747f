"""Where the built-in config, rules and templates are.

    repository:     config/  templates/                  (a checkout, an editable install)
    installed wheel: mailtriage/_defaults/config/  …/templates/   (pyproject.toml maps them)

The repository's top-level `config/` and `templates/` are the single source;
the wheel carries them under `mailtriage/_defaults/`. `init` copies from here,
the embedded defaults are read from here, and a config that names no
`templates:` renders with these.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

_PACKAGE = Path(__file__).resolve().parent.parent        # the `mailtriage` package folder

Folder = Literal["config", "templates"]


def builtin(folder: Folder) -> Path:
    """The built-in `config/` or `templates/` folder, in a wheel or a checkout."""
    packaged = _PACKAGE / "_defaults" / folder
    if packaged.is_dir():
        return packaged
    checkout = _PACKAGE.parent / folder
    # pyproject.toml beside the package: this is our checkout, not some
    # site-packages that happens to hold a `config` package of another project.
    if checkout.is_dir() and (_PACKAGE.parent / "pyproject.toml").is_file():
        return checkout
    raise FileNotFoundError(f"mailtriage's built-in {folder}/ is missing: neither {packaged} nor {checkout}")
