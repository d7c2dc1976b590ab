"""Prompt files: parsing, rendering, versions, and every bad input raising before a call."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

import tether
from tether.errors import ConfigError, PromptError
from tether.prompts import list_prompts, versions
from tether.testing import FunctionModel, ScriptedModel
from tether.tracing.setup import flush
from tether.types import Request

SUMMARIZE = """\
---
model: local:smollm2
params: {max_tokens: 8, temperature: 0}
input:
  text: str
  words: {type: int, default: 5}
output: Summary
examples:
  - input: {text: "Cats purr when content."}
    output: "Cats purr."
---
# system
Summarise in at most {{ words }} words.
# user
Text: {{ text }}
"""


def write(name: str, text: str, folder: Path = Path("prompts")) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.prompt.md"
    path.write_text(text, "utf-8")
    return path


def test_render_gives_sections_with_examples_before_the_last_user_turn() -> None:
    write("summarize", SUMMARIZE)
    prompt = tether.prompt("summarize")
    messages = prompt.render(text="Dogs bark at night.", words=3)
    assert [(m.role, m.text) for m in messages] == [
        ("system", "Summarise in at most 3 words."),
        ("user", "Text: Cats purr when content."),
        ("assistant", "Cats purr."),
        ("user", "Text: Dogs bark at night."),
    ]
    assert prompt.model == "local:smollm2"
    assert prompt.params.max_tokens == 8
    assert prompt.output == "Summary"
    assert prompt.inputs["words"].required is False
    assert prompt.render(text="x")[0].text == "Summarise in at most 5 words."  # the default


def test_a_body_without_headings_is_one_user_message_and_short_input_form_works() -> None:
    write("hello", "---\ninput: {who: str}\n---\nHello {{ who }}!\n")
    assert [(m.role, m.text) for m in tether.prompt("hello").render(who="Ada")] == [
        ("user", "Hello Ada!")
    ]


def test_without_declared_inputs_the_template_variables_are_required() -> None:
    write("free", "# user\n{{ a }} and {{ b }}\n")
    prompt = tether.prompt("free")
    assert sorted(prompt.inputs) == ["a", "b"]
    assert prompt.render(a=1, b=[2])[0].text == "1 and [2]"
    with pytest.raises(PromptError, match="missing required variable 'b'"):
        prompt.render(a=1)


def test_request_carries_params_and_the_prompt_name_and_version() -> None:
    path = write("summarize", SUMMARIZE)
    prompt = tether.prompt("summarize")
    request = prompt.request(text="hi")
    assert request.params.max_tokens == 8
    assert request.params.temperature == 0

    assert prompt.version == hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    assert request.metadata == {"prompt.name": "summarize", "prompt.version": prompt.version}


def test_run_sends_the_rendered_request_to_the_given_model() -> None:
    write("summarize", SUMMARIZE)
    model = ScriptedModel("Dogs bark.")
    response = tether.prompt("summarize").run(model=model, text="Dogs bark loudly.")
    assert response.text == "Dogs bark."
    (sent,) = model.requests
    assert sent.messages[-1].text == "Text: Dogs bark loudly."
    assert sent.metadata["prompt.name"] == "summarize"


async def test_arun_is_the_async_twin() -> None:
    write("summarize", SUMMARIZE)
    seen: list[Request] = []

    def answer(request: Request) -> str:
        seen.append(request)
        return f"{len(request.messages)} messages"

    response = await tether.prompt("summarize").arun(FunctionModel(answer), text="hi")
    assert response.text == "4 messages"
    assert seen[0].params.max_tokens == 8


def test_version_changes_with_the_file_and_old_versions_are_kept() -> None:
    path = write("summarize", SUMMARIZE)
    first = tether.prompt("summarize")
    path.write_text(SUMMARIZE.replace("at most", "no more than"), "utf-8")
    second = tether.prompt("summarize")
    assert first.version != second.version
    stored = versions.stored("summarize")
    assert list(stored) == [first.version, second.version]
    assert "at most" in stored[first.version]
    assert "no more than" in stored[second.version]


def test_loading_still_works_when_the_database_cannot_be_written(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write("summarize", SUMMARIZE)
    (project / "blocked").write_text("a file where the project folder should be")
    monkeypatch.setenv("TETHER_HOME", str(project / "blocked"))
    assert tether.prompt("summarize").render(text="x")
    assert tether.prompt("summarize").version
    assert capsys.readouterr().err.count("prompt versions are not being stored") == 1


def test_prompts_dir_is_beside_tether_toml_or_given(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project / "tether.toml").write_text('default_model = "local:smollm2"\n')
    (project / "sub").mkdir()
    write("top", "hi\n")
    write("other", "yo\n", project / "elsewhere")

    monkeypatch.chdir(project / "sub")
    assert [p.name for p in list_prompts()] == ["top"]
    assert tether.prompt("other", prompts_dir=project / "elsewhere").render()[0].text == "yo"


# Bad input: each raises PromptError (a ConfigError) before any model call.


def rejects(name: str, match: str, **variables: object) -> PromptError:
    model = ScriptedModel()  # an empty script: any call would fail the test
    with pytest.raises(PromptError, match=match) as caught:
        tether.prompt(name).run(model=model, **variables)
    assert model.requests == []
    assert isinstance(caught.value, ConfigError)
    return caught.value


def test_template_syntax_error_names_the_file_and_its_line() -> None:
    write("broken", "---\ninput: {x: str}\n---\n# system\nBe brief.\n# user\nfine\n{{ x }\n")
    error = rejects("broken", "syntax error", x="a")
    assert str(error).startswith(f"{Path('prompts/broken.prompt.md')}:8: template syntax error")


def test_syntax_error_line_without_front_matter_or_headings() -> None:
    write("broken", "one\n{{ x + }}\nthree\n")
    error = rejects("broken", "syntax error", x="a")
    assert str(error).startswith(f"{Path('prompts/broken.prompt.md')}:2: template syntax error")


@pytest.mark.parametrize(
    "template", ["{{ ''.__class__.__mro__ }}", "{{ cycler.__init__.__globals__ }}"]
)
def test_the_sandbox_blocks_python_internals(template: str) -> None:
    write("evil", f"# user\n{template}\n")
    error = rejects("evil", "tried an unsafe operation")
    assert "evil.prompt.md" in str(error)


def test_missing_variable() -> None:
    write("summarize", SUMMARIZE)
    rejects("summarize", r"summarize\.prompt\.md: missing required variable 'text'")


def test_mistyped_variable_and_bool_is_not_int() -> None:
    write("summarize", SUMMARIZE)
    rejects("summarize", "variable 'text' must be str, got int", text=3)
    rejects("summarize", "variable 'words' must be int, got bool", text="a", words=True)


def test_unknown_variable() -> None:
    write("summarize", SUMMARIZE)
    rejects(
        "summarize",
        r"unknown variable 'txt' \(did you mean 'text'\?\); this prompt takes: text, words; "
        r"run\(\) also takes model",
        txt="a",
    )


def test_a_misspelt_or_misplaced_keyword_names_what_each_method_takes() -> None:
    from pydantic import BaseModel

    class Person(BaseModel):
        name: str

    write("summarize", SUMMARIZE)
    prompt = tether.prompt("summarize")
    model = ScriptedModel()  # an empty script: any call would fail the test
    with pytest.raises(PromptError, match=r"'stratgy' \(did you mean 'strategy'\?\)") as caught:
        prompt.generate(model, output=Person, text="a", stratgy="repair")
    assert str(caught.value).endswith("generate() also takes model, output, strategy, attempts")
    with pytest.raises(PromptError, match="temperature is a generation parameter: set it under"):
        prompt.generate(model, output=Person, text="a", temperature=0.2)
    with pytest.raises(PromptError, match=r"this prompt takes: text, words$"):
        prompt.render(text="a", wrds=3)
    assert model.requests == []


def test_unknown_prompt_lists_the_ones_that_exist() -> None:
    write("summarize", SUMMARIZE)
    write("classify", "x\n")
    with pytest.raises(PromptError, match=r"no prompt 'summary'.*classify, summarize"):
        tether.prompt("summary")


def test_bad_front_matter_yaml_names_the_file_and_line() -> None:
    write("bad", "---\nmodel: local:smollm2\nparams:\n  max_tokens: [8\ninput: {}\n---\nhi\n")
    with pytest.raises(PromptError) as caught:
        tether.prompt("bad")
    assert str(caught.value).startswith(
        f"{Path('prompts/bad.prompt.md')}:5: front matter is not valid YAML: expected ',' or ']'"
    )


def test_unknown_param_in_front_matter_names_the_valid_ones() -> None:
    write("bad", "---\nmodel: local:smollm2\nparams: {max_token: 8}\n---\nhi\n")
    with pytest.raises(PromptError) as caught:
        tether.prompt("bad")
    assert str(caught.value).startswith(
        f"{Path('prompts/bad.prompt.md')}:3: params: unknown parameter 'max_token' "
        "(did you mean 'max_tokens'?); valid parameters: temperature, top_p, max_tokens,"
    )


def test_a_wrong_param_value_in_front_matter_names_the_line_and_why() -> None:
    write("bad", "---\nparams:\n  temperature: 0\n  max_tokens: -1\n---\nhi\n")
    with pytest.raises(PromptError) as caught:
        tether.prompt("bad")
    assert str(caught.value) == (
        f"{Path('prompts/bad.prompt.md')}:2: params: max_tokens: input should be greater than 0 "
        "(got -1)"
    )


def test_undeclared_template_variable_and_unknown_type() -> None:
    write("bad", "---\ninput: {text: str}\n---\n{{ text }} {{ extra }}\n")
    with pytest.raises(PromptError, match="uses 'extra', which is not declared"):
        tether.prompt("bad")
    write("bad", "---\ninput: {text: string}\n---\n{{ text }}\n")
    with pytest.raises(PromptError, match="unknown type 'string'; types: str, int"):
        tether.prompt("bad")


def test_a_real_run_on_the_local_model_traces_the_prompt(project: Path) -> None:
    write("summarize", SUMMARIZE)
    prompt = tether.prompt("summarize")
    response = prompt.run(text="The sun rose over the quiet town.")
    assert response.model == "local:smollm2"
    assert 0 < response.usage.output_tokens <= 8
    assert flush()
    db = sqlite3.connect(project / ".tether" / "tether.db")
    rows = db.execute("SELECT attributes FROM spans").fetchall()
    attrs = json.loads(rows[-1][0])
    assert attrs["tether.metadata.prompt.name"] == "summarize"
    assert attrs["tether.metadata.prompt.version"] == prompt.version


def test_a_bad_example_is_named_by_its_number() -> None:
    write("summarize", SUMMARIZE.replace('{text: "Cats purr when content."}', "{text: 7}"))
    error = rejects("summarize", "example 1: .*variable 'text' must be str", text="hi")
    assert "summarize.prompt.md" in str(error)


def test_front_matter_that_never_closes_or_has_unknown_keys() -> None:
    write("bad", "---\nmodel: local:smollm2\nhi\n")
    with pytest.raises(PromptError, match=r"bad\.prompt\.md:1: front matter opens"):
        tether.prompt("bad")
    write("bad", "---\nmodle: local:smollm2\n---\nhi\n")
    with pytest.raises(PromptError, match="unknown front matter key 'modle'; valid: model"):
        tether.prompt("bad")


EXTRACT = """\
---
params: {max_tokens: 60}
input: {text: str}
output: REFERENCE
examples:
  - input: {text: "Anna, 31, Oslo"}
    output: '{"name": "Anna", "age": 31}'
---
# system
Extract the person.
# user
{{ text }}
"""


@pytest.fixture
def schemas(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An importable module of output models, as an application would have."""
    (project / "app_schemas.py").write_text(
        "from pydantic import BaseModel\n\n"
        "class Person(BaseModel):\n    name: str\n    age: int\n\n"
        "NOT_A_MODEL = 3\n"
    )
    monkeypatch.syspath_prepend(str(project))


def test_generate_validates_into_the_model_the_front_matter_names(schemas: None) -> None:
    write("person", EXTRACT.replace("REFERENCE", "app_schemas:Person"))
    model = ScriptedModel('{"name": "Bo", "age": "x"}', '{"name": "Bo", "age": 40}')
    person = tether.prompt("person").generate(model=model, strategy="repair", text="Bo is 40")
    assert (type(person).__name__, person.name, person.age) == ("Person", "Bo", 40)
    first, second = model.requests
    assert first.metadata["prompt.name"] == "person"
    assert first.params.max_tokens == 60
    # the file's example goes before the question, its output as the assistant's answer
    assert [m.text for m in first.messages][1:3] == [
        "Anna, 31, Oslo",
        '{"name": "Anna", "age": 31}',
    ]
    assert "age" in second.messages[-1].text  # the validation error, sent back


def test_an_explicit_output_overrides_the_file(schemas: None) -> None:
    from pydantic import BaseModel

    class Name(BaseModel):
        name: str

    write("person", EXTRACT.replace("REFERENCE", "app_schemas:Person"))
    got = tether.prompt("person").generate(
        model=ScriptedModel('{"name": "Bo"}'), output=Name, strategy="repair", text="Bo"
    )
    assert got == Name(name="Bo")


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("Person", "write it as package.module:Class"),
        ("no_such_module:Person", "cannot be imported"),
        (".schemas:Person", "cannot be imported"),
        ("app_schemas:Nobody", "cannot be imported"),
        ("app_schemas:NOT_A_MODEL", "not a Pydantic model class"),
    ],
)
def test_a_bad_output_reference_raises_before_any_call(
    schemas: None, reference: str, message: str
) -> None:
    path = write("person", EXTRACT.replace("REFERENCE", reference))
    model = ScriptedModel()  # an empty script: any call would fail the test
    with pytest.raises(PromptError, match=message) as caught:
        tether.prompt("person").generate(model=model, text="Bo is 40")
    assert str(path) in str(caught.value)
    assert model.requests == []


def test_generate_without_an_output_says_how_to_give_one() -> None:
    write("hello", "---\ninput: {who: str}\n---\nHello {{ who }}!\n")
    with pytest.raises(PromptError, match="no `output`"):
        tether.prompt("hello").generate(model=ScriptedModel(), who="Ada")
