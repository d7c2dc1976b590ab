"""Templates can neither change the caller's data nor make a render allocate without bound.

Each "bomb" below would build from hundreds of megabytes to far more than the machine has;
each must fail fast with a PromptError, having allocated little (measured with tracemalloc).
"""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

import tether
from tether.errors import PromptError


def write(name: str, text: str) -> None:
    folder = Path("prompts")
    folder.mkdir(exist_ok=True)
    (folder / f"{name}.prompt.md").write_text(text, "utf-8")


@pytest.mark.parametrize(
    "template",
    [
        "{{ items.append('X') }}",
        "{{ items.pop() }}",
        "{{ items.extend(items) }}",
        "{{ options.update(extra=1) }}",
        "{{ options.clear() }}",
    ],
)
def test_a_template_cannot_change_the_callers_data(template: str) -> None:
    write("mutate", f"---\ninput: {{items: list, options: dict}}\n---\n# user\n{template}\n")
    items, options = ["a", "b"], {"k": "v"}
    with pytest.raises(PromptError, match="unsafe operation"):
        tether.prompt("mutate").render(items=items, options=options)
    assert items == ["a", "b"] and options == {"k": "v"}


def test_a_huge_string_fails_fast_before_it_is_built() -> None:
    write("big", "# user\n{{ 'x' * 50_000_000 }}\n")
    prompt = tether.prompt("big")
    tracemalloc.start()
    try:
        with pytest.raises(PromptError) as info:
            prompt.render()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000  # refused before the 50 MB string was made
    message = str(info.value)
    assert "big.prompt.md" in message and "4,000,000 characters" in message
    assert "[prompts] max_chars" in message


BOMBS = [
    "{{ 9 ** (9 ** 9) }}",
    "{{ (10 ** 6000) * (10 ** 6000) }}",
    "{{ 'x' * 500_000_000 }}",
    "{{ ['x'] * 500_000_000 }}",
    "{{ 'x'|center(1_000_000_000) }}",
    "{{ 'x'.ljust(1_000_000_000) }}",
    "{{ 'x'.zfill(1_000_000_000) }}",
    "{{ ('\\t' * 1000).expandtabs(1_000_000) }}",
    "{{ ('x' * 10000)|replace('x', 'y' * 100_000) }}",
    "{{ ('y' * 10000).replace('', 'z' * 100_000) }}",
    "{{ ('a' * 100_000)|join('b' * 10_000) }}",
    "{{ ('b' * 10_000).join(['a'] * 100_000) }}",
    "{{ range(100_000)|join('b' * 10_000) }}",
    "{{ '%0999999999d' % 1 }}",
    "{{ '%.999999999f' % 1.5 }}",
    "{{ '{:>999999999}'.format('x') }}",
    "{{ '%s'|format('x' * 1000) * 1_000_000 }}",
    "{{ 'a\\nb'|indent(1_000_000_000) }}",
    "{{ ('x' * 100_000)|wordwrap(1, wrapstring='w' * 100_000) }}",
    "{{ [1]|batch(1_000_000_000, 0)|list }}",
    "{{ [1]|slice(1_000_000_000)|list }}",
    "{% set ns = namespace(s='x') %}{% for i in range(64) %}"
    "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
    "{% set ns = namespace(s='x') %}{% for i in range(64) %}"
    "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s|length }}",
    "{% set a = 'x' * 1_000_000 %}{{ " + "~".join(["a"] * 40) + " }}",
    "{% set big %}{% for i in range(100_000) %}{{ 'y' * 10_000 }}{% endfor %}{% endset %}"
    "{{ big|length }}",
    "{% macro m() %}{% for i in range(100_000) %}{{ 'y' * 10_000 }}{% endfor %}{% endmacro %}"
    "{{ m()|length }}",
    "{% set a = 'x' * 1_000_000 %}{{ [a] * 1000 }}",
    "{% set a = 'x' * 1_000_000 %}{{ ([a] * 1000) ~ '' }}",
    "{% set a = 'x' * 1_000_000 %}{{ [[a] * 1000]|join }}",
    "{% set a = 'x' * 1_000_000 %}{{ ([a] * 1000)|center(1) }}",
    "{% set a = 'x' * 1_000_000 %}{{ '%(a)s' * 1 ~ ('%(a)s' * 1000) % {'a': a} }}",
    "{% set a = 'x' * 1_000_000 %}{{ ([a] * 1000)|string|length }}",
    "{% set a = 'x' * 1_000_000 %}{{ ([a] * 1000)|tojson|length }}",
    "{% set a = 'x' * 1_000_000 %}{{ ([a] * 1000)|pprint|length }}",
    "{% set a = '<' * 1_000_000 %}{{ ([a] * 10)|join|e|length }}",
    "{% set a = 'x' * 1_000_000 %}{{ ([[a]] * 1000)|sum(start=[])|length }}",
]


@pytest.mark.parametrize("template", BOMBS)
def test_what_would_build_too_much_fails_fast_with_little_allocated(template: str) -> None:
    write("bomb", "# user\n" + template + "\n")
    prompt = tether.prompt("bomb")
    started = time.perf_counter()
    tracemalloc.start()
    try:
        with pytest.raises(PromptError, match=r"bomb\.prompt\.md") as info:
            prompt.render()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 10
    assert peak < 100_000_000  # the budget is 8 x 4,000,000 characters
    assert "max_chars" in str(info.value) or "failed to render" in str(info.value)


def test_a_long_loop_stops_at_the_configured_cap(project: Path) -> None:
    (project / "tether.toml").write_text("[prompts]\nmax_chars = 10000\n")
    write("loop", "# user\n{% for i in range(100000) %}{{ i }} {% endfor %}\n")
    with pytest.raises(PromptError) as info:
        tether.prompt("loop").render()
    assert "loop.prompt.md" in str(info.value) and "10,000 characters" in str(info.value)
    write("short", "# user\n{% for i in range(100) %}{{ i }} {% endfor %}\n")
    assert tether.prompt("short").render()[0].text.startswith("0 1 2")


def test_ordinary_templates_render_as_before() -> None:
    write(
        "ordinary",
        "---\ninput: {rows: list, name: str}\n---\n# user\n"
        "{% macro row(r) %}- {{ r.name|title }}: {{ '%5.1f'|format(r.score) }}{% endmacro %}"
        "{% set header %}Report for {{ name|upper }}{% endset %}{{ header|center(30) }}\n"
        "{% for r in rows %}{{ row(r) }}\n{% endfor %}"
        "{{ rows|map(attribute='name')|join(', ') }} / {{ name ~ '!' * 3 }} / "
        "{{ 'a-b'.replace('-', '+') }} / {{ '{}:{:>4}'.format(name, 7) }} / {{ 2 ** 10 }}\n"
        "{{ 'x\\ny'|indent(2) }} {{ (rows|length) * 'ab' }} {{ rows|batch(1)|list|length }}",
    )
    rows = [{"name": "ann", "score": 9.25}, {"name": "bob", "score": 7}]
    (message,) = tether.prompt("ordinary").render(rows=rows, name="q3")
    assert message.text.splitlines() == [
        "Report for Q3".center(30).lstrip(),
        "- Ann:   9.2",
        "- Bob:   7.0",
        "ann, bob / q3!!! / a+b / q3:   7 / 1024",
        "x",
        "  y abab 2",
    ]
