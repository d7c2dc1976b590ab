"""``tether models``: every model id this project can use, its price, and whether it answers.

Rows come from the settings (default model, aliases, endpoints, routers), the installed
providers with the models the price table knows, and the embedded local models. ``--check``
asks the cheapest question that tells a working setup from a broken one, without spending a
token: is the model file there, is the key set, does the server answer.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Annotated

import typer
from rich.text import Text

from tether.cli.common import JsonFlag, out, write

if TYPE_CHECKING:
    from rich.console import JustifyMethod
    from rich.table import Table

    from tether.config import EndpointConfig, Settings
    from tether.types import Price

KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
ENDPOINT_TIMEOUT_S = 2.0


@dataclass
class Row:
    kind: str
    id: str
    target: str = ""
    input_per_million: float | None = None
    output_per_million: float | None = None
    reachable: bool | None = None
    detail: str = ""


def _row(kind: str, model_id: str, target: str, price: Price | None) -> Row:
    if price is None:
        return Row(kind, model_id, target)
    return Row(kind, model_id, target, price.input, price.output)


def list_rows(settings: Settings) -> list[Row]:
    """One row per usable id, configured ones first."""
    from tether.models import pricing
    from tether.models.local_files import EMBEDDED
    from tether.models.registry import provider_names

    price = pricing.price_for
    default = settings.default_model
    alias = settings.models.get(default)
    if alias:
        rows = [_row("default", default, alias.id, alias.price or price(alias.id))]
    else:
        rows = [_row("default", default, "", price(default))]
    for name, config in settings.models.items():
        rows.append(_row("alias", name, config.id, config.price or price(config.id)))
    for name, endpoint in settings.endpoints.items():
        rows.append(_row("endpoint", f"{name}:*", endpoint.base_url, None))
    for name, router in settings.routers.items():
        routes = [f"{key} → {target}" for key, target in router.routes.items()]
        routes.append(f"else → {router.default}")
        rows.append(_row("router", name, ", ".join(routes), None))
    for provider in provider_names():
        if provider == "local":
            continue
        listed = pricing.table().get(provider)
        names = list(listed) if isinstance(listed, dict) else ["*"]
        for model_name in names:
            model_id = f"{provider}:{model_name}"
            rows.append(_row("provider", model_id, "", price(model_id)))
    for name in EMBEDDED:
        rows.append(_row("local", f"local:{name}", "embedded GGUF", price(f"local:{name}")))
    return rows


Check = tuple[bool | None, str]  # reachable (None: tether cannot tell), and why


class Checker:
    """Answers "would a call to this id get through?", asking each server only once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._done: dict[str, Check] = {}

    def check(self, model_id: str) -> Check:
        if model_id not in self._done:
            self._done[model_id] = (False, f"{model_id} refers to itself")  # until known
            self._done[model_id] = self._check(model_id)
        return self._done[model_id]

    def _check(self, model_id: str) -> Check:
        settings = self.settings
        if model_id in settings.routers:
            router = settings.routers[model_id]
            for target in router.routes.values():
                ok, detail = self.check(target)
                if not ok:
                    return ok, f"{target}: {detail}"
            return True, "every route is reachable"
        if model_id in settings.models:
            return self.check(settings.models[model_id].id)
        prefix, _, name = model_id.partition(":")
        if prefix in settings.endpoints:
            if name != "*":  # every model behind one endpoint shares its answer
                return self.check(f"{prefix}:*")
            return _ping(settings.endpoints[prefix])
        if prefix == "local":
            return _local(name)
        if prefix in KEY_ENV:
            return _key(KEY_ENV[prefix], settings)
        return None, f"no check for provider {prefix!r}"


def _local(name: str) -> Check:
    from tether.errors import ModelFileError
    from tether.models.local_files import resolve_path

    try:
        path = resolve_path(name)
    except ModelFileError as exc:
        return False, str(exc)
    return True, f"{path.name} verified"


def _key(env_var: str, settings: Settings) -> Check:
    from tether.config import secret
    from tether.errors import AuthError

    try:
        secret(env_var, settings.home)
    except AuthError:
        return False, f"{env_var} is missing"
    return True, f"{env_var} is set"


def _ping(endpoint: EndpointConfig) -> Check:
    """GET {base_url}/models: any server worth calling answers this quickly."""
    url = endpoint.base_url.rstrip("/") + "/models"
    request = urllib.request.Request(url)
    if endpoint.api_key_env and (key := os.environ.get(endpoint.api_key_env)):
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=ENDPOINT_TIMEOUT_S) as answer:
            return True, f"{url} answers {answer.status}"
    except urllib.error.HTTPError as exc:
        return False, f"{url} answers {exc.code}"
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"{url} did not answer in {ENDPOINT_TIMEOUT_S:g} s ({reason})"


def _price(value: float | None) -> str:
    return "" if value is None else f"${value:.2f}"


MARKS = {True: ("ok", "green"), False: ("no", "red"), None: ("?", "yellow")}
# When the table is wider than the terminal: the target column shrinks (each line cut with an
# ellipsis, never wrapped) if TARGET_MIN columns of it still show, else a column is left out,
# in this order, and the table tried again. Kind goes first: the rows' order (default,
# aliases, endpoints, routers, providers, local) and their targets tell it too. Ids and the
# check mark always stay, each id whole on one line.
LEFT_OUT_FIRST = ("kind", "target", "$/M out", "$/M in")
TARGET_MIN = 16
UNLIMITED = 10_000  # a width to measure the table's own at


def _target_lines(row: Row) -> str:
    """A router's routes one per line, so a line never ends inside one."""
    return row.target.replace(", ", "\n") if row.kind == "router" else row.target


Columns = dict[str, tuple[list[str | Text], "JustifyMethod"]]


def _columns(rows: list[Row], checked: bool) -> Columns:
    """Each column's cells and justification, in display order."""
    columns: Columns = {
        "kind": ([row.kind for row in rows], "left"),
        "id": ([row.id for row in rows], "left"),
        "target": ([_target_lines(row) for row in rows], "left"),
        "$/M in": ([_price(row.input_per_million) for row in rows], "right"),
        "$/M out": ([_price(row.output_per_million) for row in rows], "right"),
    }
    if checked:
        columns["ok"] = ([Text(*MARKS[row.reachable]) for row in rows], "left")
    return columns


def _build(columns: Columns, target_width: int | None) -> Table:
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for name, (cells, justify) in columns.items():
        longest = max(len(str(cell)) for cell in [name, *cells])
        table.add_column(
            name,
            justify=justify,
            no_wrap=True,
            overflow="ellipsis",
            min_width=None if name == "target" else longest,
            max_width=target_width if name == "target" else None,
        )
    for row in zip(*(cells for cells, _ in columns.values()), strict=True):
        table.add_row(*row)
    return table


def _fitted(rows: list[Row], checked: bool, width: int) -> tuple[Table, list[str]]:
    """The table at most ``width`` wide if it can be, and the columns left out for that."""
    from rich.measure import Measurement

    columns = _columns(rows, checked)
    left_out: list[str] = []
    target_width: int | None = None
    while True:
        table = _build(columns, target_width)
        natural = Measurement.get(out, out.options.update_width(UNLIMITED), table).maximum
        excess = natural - width
        if excess <= 0:
            return table, left_out
        if "target" in columns and target_width is None:
            longest = max(
                len(line) for cell in columns["target"][0] for line in str(cell).split("\n")
            )
            if longest - excess >= TARGET_MIN:
                target_width = longest - excess
                continue
        droppable = [name for name in LEFT_OUT_FIRST if name in columns]
        if not droppable:
            return table, left_out  # narrower than an id: it still prints whole
        del columns[droppable[0]]
        left_out.append(droppable[0])


def _table(rows: list[Row], checked: bool) -> None:
    table, left_out = _fitted(rows, checked, out.width)
    out.print(table, crop=False)
    if left_out:
        out.print(
            f"{', '.join(left_out)} left out to fit {out.width} columns: widen the terminal, "
            "or use --json",
            style="dim",
        )


def _print_checks(rows: list[Row]) -> None:
    """Each distinct finding once, with the ids it concerns: twenty rows share one key."""
    findings: dict[tuple[bool | None, str], list[str]] = {}
    for row in rows:
        ids = findings.setdefault((row.reachable, row.detail), [])
        if row.id not in ids:  # the default model is listed twice: as default and by kind
            ids.append(row.id)
    for (reachable, detail), ids in findings.items():
        shown = ", ".join(ids[:3]) + (f" and {len(ids) - 3} more" if len(ids) > 3 else "")
        mark, style = MARKS[reachable]
        out.print(Text.assemble((f"{mark:>2} ", style), (detail, style), (f"  ({shown})", "dim")))


def models(
    check: Annotated[bool, typer.Option("--check", help="Check each model is reachable.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """List the models this project can call, with prices per million tokens."""
    from tether.config import load_settings
    from tether.models.pricing import as_of

    settings = load_settings()
    rows = list_rows(settings)
    if check:
        checker = Checker(settings)
        for row in rows:
            row.reachable, row.detail = checker.check(row.id)
    if as_json:
        write(json.dumps([asdict(row) for row in rows], indent=2) + "\n")
        return
    _table(rows, check)
    out.print(f"prices in USD per million tokens, as of {as_of()}", style="dim")
    if check:
        _print_checks(rows)
