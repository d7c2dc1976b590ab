"""``tether prompt``: list, render, run and diff, in-process (run once on the local model)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tether.cli.main import app
from tether.cli.prompt import parse_vars

GREET = """\
---
model: local:smollm2
params: {max_tokens: 8, temperature: 0}
input:
  name: str
  times: {type: int, default: 1}
---
# system
Greet {{ times }} time(s).
# user
Say hello to {{ name }}.
"""


def tether(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def write(text: str = GREET) -> Path:
    Path("prompts").mkdir(exist_ok=True)
    path = Path("prompts/greet.prompt.md")
    path.write_text(text, "utf-8")
    return path


def test_parse_vars_reads_json_values_else_strings() -> None:
    assert parse_vars(["n=3", "xs=[1, 2]", "name=Ada", "flag=true", 's="3"']) == {
        "n": 3,
        "xs": [1, 2],
        "name": "Ada",
        "flag": True,
        "s": "3",
    }


def test_list_shows_name_version_model_and_inputs() -> None:
    write()
    result = tether("prompt", "list", "--json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["name"] == "greet"
    assert re.fullmatch(r"[0-9a-f]{12}", row["version"])
    assert row["model"] == "local:smollm2"
    assert row["inputs"] == {
        "name": {"type": "str", "required": True},
        "times": {"type": "int", "required": False},
    }
    table = tether("prompt", "list")
    assert row["version"] in table.stdout
    assert "name: str, times: int?" in table.stdout


def test_render_prints_each_message_with_its_role() -> None:
    write()
    result = tether("prompt", "render", "greet", "-v", "name=Ada", "-v", "times=2")
    assert result.exit_code == 0, result.output
    assert result.stdout == "system\nGreet 2 time(s).\n\nuser\nSay hello to Ada.\n\n"
    as_json = json.loads(tether("prompt", "render", "greet", "-v", "name=Ada", "--json").stdout)
    assert [m["role"] for m in as_json] == ["system", "user"]


def test_render_with_a_mistyped_variable_is_a_one_line_error() -> None:
    write()
    result = tether("prompt", "render", "greet", "-v", "name=Ada", "-v", "times=two")
    assert result.exit_code == 1
    assert "variable 'times' must be int, got str 'two'" in result.stderr
    assert "Traceback" not in result.output


def test_run_streams_the_answer_on_the_local_model_with_a_footer() -> None:
    write()
    result = tether("prompt", "run", "greet", "-v", "name=Ada", "-o", "max_tokens", "4")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip()
    match = re.search(r"local:smollm2 · \d+ in / (\d+) out tokens", result.stderr)
    assert match, result.stderr
    assert 0 < int(match[1]) <= 4  # -o overrides the file's max_tokens of 8


PERSON = """\
---
model: local:smollm2
params: {temperature: 0}
input: {text: str}
output: cli_schemas:Person
---
Extract the person from: {{ text }}
"""


def test_run_prints_the_validated_object_when_the_file_names_an_output(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))  # run adds the project folder
    (project / "cli_schemas.py").write_text(
        "from pydantic import BaseModel, Field\n\n"
        "class Person(BaseModel):\n"
        "    name: str = Field(max_length=20)\n"
        "    age: int = Field(ge=0, le=150)\n"
    )
    write(PERSON)
    result = tether("prompt", "run", "greet", "-v", "text=Bo is 40 years old")
    assert result.exit_code == 0, result.output
    person = json.loads(result.stdout)
    assert set(person) == {"name", "age"} and isinstance(person["age"], int)
    assert re.search(r"local:smollm2 · \d+ in / \d+ out tokens", result.stderr)

    as_text = tether("prompt", "run", "greet", "-v", "text=Bo", "--text", "-o", "max_tokens", "3")
    assert as_text.exit_code == 0, as_text.output
    assert re.search(r"/ [1-3] out tokens", as_text.stderr)  # streamed, unconstrained


def test_run_with_an_output_that_cannot_be_imported_names_the_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    write(PERSON.replace("cli_schemas:Person", "no_such_module:Person"))
    result = tether("prompt", "run", "greet", "-v", "text=Bo")
    assert result.exit_code == 1
    assert "greet.prompt.md: output 'no_such_module:Person' cannot be imported" in result.stderr
    assert "Traceback" not in result.output


def test_diff_shows_what_changed_between_versions() -> None:
    path = write()
    old = json.loads(tether("prompt", "list", "--json").stdout)[0]["version"]
    path.write_text(GREET.replace("Say hello to", "Wave at"), "utf-8")
    result = tether("prompt", "diff", f"greet@{old}", "greet@current")
    assert result.exit_code == 0, result.output
    new = json.loads(tether("prompt", "list", "--json").stdout)[0]["version"]
    assert f"--- greet@{old}" in result.stdout
    assert f"+++ greet@{new}" in result.stdout
    assert "-Say hello to {{ name }}." in result.stdout
    assert "+Wave at {{ name }}." in result.stdout
    assert tether("prompt", "diff", "greet", f"greet@{new}").stdout == ""


def test_diff_with_an_unknown_version_lists_the_known_ones() -> None:
    write()
    version = json.loads(tether("prompt", "list", "--json").stdout)[0]["version"]
    result = tether("prompt", "diff", "greet@0123456789ab", "greet")
    assert result.exit_code == 1
    assert "no version '0123456789ab' of prompt 'greet'" in result.stderr
    assert f"known versions: {version}" in result.stderr


def test_prompt_help_imports_neither_jinja2_nor_yaml() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from tether.cli.main import app\n"
        "assert CliRunner().invoke(app, ['prompt', '--help']).exit_code == 0\n"
        "print([n for n in ('jinja2', 'yaml', 'tether.prompts') if n in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
