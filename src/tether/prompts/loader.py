"""``Prompt``: a loaded prompt file that renders messages and runs them on a model.

Every request a prompt builds carries ``prompt.name`` and ``prompt.version`` as metadata, so
the traced span records which prompt, at which version, produced each call.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from tether import _sync
from tether.errors import PromptError
from tether.prompts import versions
from tether.prompts.files import SUFFIX, Example, Parsed, parse
from tether.prompts.template import MAX_CHARS, Input, check_inputs, render
from tether.types import Message, Params, Request, Response, did_you_mean

if TYPE_CHECKING:
    from tether.models.base import Model
    from tether.structured.generate import Strategy

T = TypeVar("T", bound=BaseModel)

ROLES = {"system": Message.system, "user": Message.user, "assistant": Message.assistant}


class Prompt:
    """A prompt file, parsed and checked; its ``version`` is the hash of the file's bytes.
    A render may output at most ``max_chars`` characters ([prompts] max_chars)."""

    def __init__(
        self,
        name: str,
        path: Path,
        text: str,
        version: str,
        parsed: Parsed,
        *,
        max_chars: int = MAX_CHARS,
    ) -> None:
        self.name = name
        self.path = path
        self.text = text
        self.version = version
        self.max_chars = max_chars
        self._parsed = parsed

    @property
    def model(self) -> str | None:
        return self._parsed.model

    @property
    def params(self) -> Params:
        return self._parsed.params

    @property
    def inputs(self) -> dict[str, Input]:
        return self._parsed.inputs

    @property
    def output(self) -> str | None:
        """The output schema reference from the front matter, ``package.module:Class``."""
        return self._parsed.output

    def output_model(self) -> type[BaseModel]:
        """The Pydantic model ``output`` names, imported; PromptError naming the file if the
        reference is missing, malformed, not importable or not a Pydantic model."""
        reference = self.output
        if not reference:
            raise PromptError(
                f"{self.path}: the front matter has no `output`; add `output: "
                "package.module:Class` or pass output= to generate()"
            )
        module_name, colon, attribute = reference.partition(":")
        if not colon or not module_name or not attribute:
            raise PromptError(
                f"{self.path}: output {reference!r} is not a reference tether can import; "
                "write it as package.module:Class"
            )
        try:
            found: Any = importlib.import_module(module_name)
            for part in attribute.split("."):
                found = getattr(found, part)
        except Exception as exc:  # not found, a relative name, or the module failing to import
            raise PromptError(
                f"{self.path}: output {reference!r} cannot be imported ({exc})"
            ) from exc
        if not (isinstance(found, type) and issubclass(found, BaseModel)):
            raise PromptError(
                f"{self.path}: output {reference!r} is {found!r}, not a Pydantic model class"
            )
        return found

    @property
    def examples(self) -> list[Example]:
        return self._parsed.examples

    def _refuse_unknown(self, variables: dict[str, Any], method: str, own: tuple[str, ...]) -> None:
        """A keyword that is neither one of this prompt's variables nor ``method``'s own; a
        generation parameter among them belongs in the front matter."""
        unknown = [name for name in variables if name not in self.inputs]
        if not unknown:
            return
        name = unknown[0]
        if name in Params.model_fields:
            hint = (
                f" ({name} is a generation parameter: set it under params in the front matter, "
                f"or pass prompt.request(...) to model.generate(..., {name}=...))"
            )
        else:
            hint = did_you_mean(name, [*own, *self.inputs])
        also = f"; {method}() also takes {', '.join(own)}" if own else ""
        raise PromptError(
            f"{self.path}: unknown variable {name!r}{hint}; this prompt takes: "
            f"{', '.join(self.inputs) or 'no variables'}{also}"
        )

    def render(self, **variables: Any) -> list[Message]:
        """The messages for these variables; few-shot examples go before the last user turn."""
        self._refuse_unknown(variables, "render", ())
        values = check_inputs(self.inputs, variables, self.path)
        messages = [
            ROLES[s.role](render(s.template, values, self.path, self.max_chars))
            for s in self._parsed.sections
        ]
        users = [i for i, s in enumerate(self._parsed.sections) if s.role == "user"]
        if not users or not self.examples:
            return messages
        template = self._parsed.sections[users[-1]].template
        turns: list[Message] = []
        for number, example in enumerate(self.examples, start=1):
            try:
                shown = check_inputs(self.inputs, example.input, self.path)
            except PromptError as exc:
                raise PromptError(f"example {number}: {exc}") from exc
            turns += [
                Message.user(render(template, shown, self.path, self.max_chars)),
                Message.assistant(example.output),
            ]
        return messages[: users[-1]] + turns + messages[users[-1] :]

    def request(self, **variables: Any) -> Request:
        """The Request to send: rendered messages, the file's params, name and version."""
        self._refuse_unknown(variables, "request", ())
        return Request(
            messages=self.render(**variables),
            params=self.params.model_copy(),
            metadata={"prompt.name": self.name, "prompt.version": self.version},
        )

    def _model(self, model: str | Model | None) -> Model:
        from tether.models.registry import as_model

        return as_model(model or self.model)

    async def arun(self, model: str | Model | None = None, **variables: Any) -> Response:
        """Render and call ``model`` (an id or a Model; else the file's model, else the default).

        Variables are checked before the model is even built, so nothing is sent on error.
        """
        self._refuse_unknown(variables, "run", ("model",))
        request = self.request(**variables)
        return await self._model(model).agenerate(request)

    def run(self, model: str | Model | None = None, **variables: Any) -> Response:
        """Sync twin of arun; works inside a running event loop."""
        return _sync.run(self.arun(model, **variables))

    async def agenerate(
        self,
        model: str | Model | None = None,
        *,
        output: type[T] | None = None,
        strategy: Strategy = "auto",
        attempts: int = 3,
        **variables: Any,
    ) -> Any:
        """A validated object: the rendered prompt through tether.structured, into ``output``
        (else the model the front matter's ``output`` names). The file's examples show the
        model the answers it wants; write their outputs as JSON."""
        from tether.structured.generate import agenerate

        self._refuse_unknown(variables, "generate", ("model", "output", "strategy", "attempts"))
        schema = output if output is not None else self.output_model()
        request = self.request(**variables)
        return await agenerate(
            self._model(model), request, schema, strategy=strategy, attempts=attempts
        )

    def generate(
        self,
        model: str | Model | None = None,
        *,
        output: type[T] | None = None,
        strategy: Strategy = "auto",
        attempts: int = 3,
        **variables: Any,
    ) -> Any:
        """Sync twin of agenerate; works inside a running event loop."""
        return _sync.run(
            self.agenerate(model, output=output, strategy=strategy, attempts=attempts, **variables)
        )

    def __repr__(self) -> str:
        return f"<Prompt {self.name}@{self.version}>"


def prompts_dir(folder: Path | None = None) -> Path:
    """``folder`` if given, else ``prompts/`` beside tether.toml, else ``./prompts``."""
    if folder is not None:
        return Path(folder)
    from tether.config import load_settings

    source = load_settings().source
    return source.parent / "prompts" if source else Path("prompts")


def load(path: Path) -> Prompt:
    """Parse one prompt file and record its version in the project database."""
    from tether.config import load_settings

    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PromptError(f"{path}: not UTF-8 text ({exc}); save the file as UTF-8") from exc
    name = path.name.removesuffix(SUFFIX)
    max_chars = load_settings().prompts.max_chars
    version = versions.version_of(data)
    prompt = Prompt(name, path, text, version, parse(text, path), max_chars=max_chars)
    versions.record(name, prompt.version, text)
    return prompt


def names(folder: Path | None = None) -> list[str]:
    """The names of the prompt files in the prompts folder, sorted."""
    found = prompts_dir(folder)
    if not found.is_dir():
        return []
    return sorted(p.name.removesuffix(SUFFIX) for p in found.glob(f"*{SUFFIX}"))


def prompt(name: str, *, prompts_dir: Path | None = None) -> Prompt:
    """Load ``prompts/NAME.prompt.md``; raises PromptError listing the prompts that exist."""
    folder = _folder(prompts_dir)
    path = folder / f"{name}{SUFFIX}"
    if not path.is_file():
        existing = names(folder)
        raise PromptError(
            f"no prompt {name!r}: {path} does not exist; prompts in {folder}: "
            f"{', '.join(existing) or f'none (create {folder}/{name}{SUFFIX})'}"
        )
    return load(path)


def list_prompts(prompts_dir: Path | None = None) -> list[Prompt]:
    """Every prompt in the prompts folder, loaded (so each version is recorded)."""
    folder = _folder(prompts_dir)
    return [load(folder / f"{name}{SUFFIX}") for name in names(folder)]


_folder = prompts_dir  # the public functions take an argument of the same name
