"""``tether init``: write a commented tether.toml that shows every kind of setting.

The file is an example to edit, so it works as written: it loads, the default model runs
offline, and the parts that need a key or a server only come into play when asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tether.cli.common import out
from tether.errors import ConfigError

TEMPLATE = """\
# tether.toml: the models, endpoints and routes of this project. Commit it.
# Settings load from this file, then TETHER_* environment variables, then arguments.
# API keys never go here: set OPENAI_API_KEY / ANTHROPIC_API_KEY in the environment (or in
# .tether/secrets.toml, which stays out of version control) and name other keys with
# api_key_env.

# The model used when none is given: `tether run "..."`, `tether.model()`.
default_model = "local:smollm2"

# Where traces and other project state live (relative to this file).
home = ".tether"

# An alias: `tether run -m fast "..."` or `tether.model("fast")`.
[models.fast]
id = "openai:gpt-4.1-mini"
timeout = 30                    # seconds per attempt
retries = 2                     # retried on rate limits, timeouts and server errors
fallbacks = ["local:smollm2"]   # tried in order once the retries are spent
params = { temperature = 0.2, max_tokens = 512 }   # defaults; a call's own params win

# A local OpenAI-compatible server (llama.cpp, vLLM, Ollama, LM Studio):
# `llamacpp:MODEL` ids go to it. Start one with
#   python -m llama_cpp.server --model model.gguf --port 8080
[endpoints.llamacpp]
provider = "openai"             # the wire format it speaks: openai | anthropic
base_url = "http://127.0.0.1:8080/v1"
# api_key_env = "LLAMACPP_API_KEY"  # the variable holding its key, if it wants one
tools = true

# A router: picks a route by the request's `route` metadata, else the default route.
[routers.support]
routes = { simple = "local:smollm2", hard = "fast" }
default = "simple"

[tracing]
enabled = true
content = "truncated"           # off | truncated | full: how much prompt text is stored
max_chars = 2000                # the cut-off for "truncated"

[local]
n_ctx = 2048                    # context window, in tokens, for local GGUF models
"""


def init(
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing tether.toml.")
    ] = False,
) -> None:
    """Write an example tether.toml in the current folder."""
    from tether.config import CONFIG_FILE

    path = Path.cwd() / CONFIG_FILE
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists; pass --force to overwrite it")
    path.write_text(TEMPLATE, encoding="utf-8")
    out.print(f"wrote {path}; edit it, then try `tether models --check`")
