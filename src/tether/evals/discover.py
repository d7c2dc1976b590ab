"""Finding suites: every ``Suite`` defined at the top level of a file in ``evals/``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from tether.errors import ConfigError
from tether.evals.suite import Suite

FOLDER = "evals"
MODULE_PREFIX = "tether_evals_"  # a suite file's module name, its stem after this


def discover(folder: str | Path = FOLDER) -> dict[str, Suite]:
    """The suites in ``folder``'s ``*.py`` files, by name."""
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(
            f"no {root}/ folder here; put suites in {root}/*.py (docs/evals.md shows one)"
        )
    suites: dict[str, Suite] = {}
    where: dict[str, Path] = {}
    for path in sorted(root.glob("*.py")):
        if path.name.startswith("_"):
            continue
        module = load(path)
        for value in vars(module).values():
            if isinstance(value, Suite):
                if value.name in suites and suites[value.name] is not value:
                    raise ConfigError(
                        f"two suites are named {value.name!r} ({where[value.name]} and {path}); "
                        "rename one"
                    )
                suites[value.name] = value
                where[value.name] = path
    return suites


def load(path: Path) -> ModuleType:
    """Import one suite file as the module ``tether_evals_<stem>``, its folder on the import
    path so that it may import its siblings (evals/_data.py)."""
    folder = str(path.parent.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    name = f"{MODULE_PREFIX}{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"{path} cannot be imported as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ConfigError(f"{path} failed to import: {type(exc).__name__}: {exc}") from exc
    return module


def find(name: str, folder: str | Path = FOLDER) -> Suite:
    suites = discover(folder)
    if name not in suites:
        known = ", ".join(sorted(suites)) or "none"
        raise ConfigError(f"no suite named {name!r} in {folder}/ (suites: {known})")
    return suites[name]
