"""Every dependency pyproject.toml declares for the product is imported by the product."""

import re
import tomllib

from helpers import ROOT

# Distribution name → the module it installs, where the two differ.
MODULES = {"pyyaml": "yaml", "google-re2": "re2", "charset-normalizer": "charset_normalizer",
           "flufl.bounce": "flufl.bounce", "mail-parser": "mailparser", "mail-parser-reply": "mailparser_reply",
           "sqlalchemy": "sqlalchemy", "pystemmer": "Stemmer", "argon2-cffi": "argon2",
           "python-json-logger": "pythonjsonlogger", "prometheus-client": "prometheus_client",
           # Needed by a library's optional part the product imports, not imported by name:
           "itsdangerous": "starlette.middleware.sessions"}


def declared() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [re.split(r"[<>=!~\[ ;]", spec, maxsplit=1)[0].lower() for spec in project["dependencies"]]


def test_each_declared_dependency_is_imported_by_the_product():
    source = "\n".join(path.read_text(encoding="utf-8") for path in (ROOT / "mailtriage").rglob("*.py"))
    unused = [name for name in declared()
              if not re.search(rf"^\s*(import|from) {re.escape(MODULES.get(name, name))}\b", source, re.M)]
    assert unused == []


def test_the_readme_says_what_each_dependency_is_for():
    readme = (ROOT / "README.md").read_text(encoding="utf-8").lower()
    table = readme.split("## dependencies and what each is for", 1)[1].split("\n## ", 1)[0]
    missing = [name for name in declared() if f"| {name} " not in table.replace("sqlalchemy 2", "sqlalchemy")]
    assert missing == []
