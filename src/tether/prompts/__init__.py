"""Prompt files: versioned ``prompts/NAME.prompt.md`` files with sandboxed templates.

``tether.prompt("summarize").render(text=...)`` gives the messages; ``.run(text=...)`` calls
the model and traces the prompt's name and version on the span. ``Context`` fits a call's
parts (system, examples, passages, history, question) into a token budget.
"""

from __future__ import annotations

from tether.prompts.context import Assembly, Context
from tether.prompts.loader import Prompt, list_prompts, load, prompt, prompts_dir
from tether.prompts.template import Input

__all__ = [
    "Assembly",
    "Context",
    "Input",
    "Prompt",
    "list_prompts",
    "load",
    "prompt",
    "prompts_dir",
]
