"""Finding suites: every ``Suite`` defined at the top level of a file in ``evals/``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from tether.errors import ConfigError
from tether.evals.suite import Suite

FOLDER = "evals"


def discover(folder: str | Path = FOLDER) -> dict[str, Suite]:
    """The suites in ``folder``'s ``*.py`` files, by name."""
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(
            f"no {root}/ folder here; put suites in {root}/*.py (docs/evals.md shows one)"
        )
    suites: dict[str, Suite] = {}
    where: dict[str, Path] = {}
    folder_path = str(root.resolve())
    if folder_path not in sys.path:  # suites may import their siblings (evals/_data.py)
        sys.path.insert(0, folder_path)
    for path in sorted(root.glob("*.py")):
        if path.name.startswith("_"):
            continue
        module_name = f"tether_evals_{path.stem}"
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            continue
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise ConfigError(f"{path} failed to import: {type(exc).__name__}: {exc}") from exc
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


def find(name: str, folder: str | Path = FOLDER) -> Suite:
    suites = discover(folder)
    if name not in suites:
        known = ", ".join(sorted(suites)) or "none"
        raise ConfigError(f"no suite named {name!r} in {folder}/ (suites: {known})")
    return suites[name]
