"""The ``tether`` command line, run in-process on the embedded model (and once for real)."""

from __future__ import annotations

import http.server
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tether.cli.common import parse_params
from tether.cli.main import app
from tether.config import load_settings
from tether.errors import ConfigError
from tether.tracing.query import recent_calls
from tether.tracing.setup import flush
from tether.tracing.store import loss_file
from tether.types import Response

SHORT = ["-o", "max_tokens", "8", "-o", "temperature", "0"]
FOOTER = re.compile(r"local:smollm2 · (\d+) in / (\d+) out tokens · \$0 · \d+ ms")


def tether(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input)


def test_run_streams_text_then_a_footer_with_model_and_tokens() -> None:
    result = tether("run", "Say hello.", *SHORT)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip()
    match = FOOTER.search(result.stderr)
    assert match, result.stderr
    assert int(match[1]) > 5
    assert 0 < int(match[2]) <= 8


def test_run_json_prints_the_response_with_usage() -> None:
    result = tether("run", "Say hello.", "--json", *SHORT)
    assert result.exit_code == 0, result.output
    response = Response.model_validate_json(result.stdout)
    assert response.model == "local:smollm2"
    assert response.text
    assert 0 < response.usage.output_tokens <= 8
    assert response.cost_usd == 0.0


def test_run_reads_the_prompt_from_stdin_with_a_dash() -> None:
    result = tether("run", "-", "--no-stream", *SHORT, input="Say hello.")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip()
    assert FOOTER.search(result.stderr)


def test_options_parse_as_json_when_they_can() -> None:
    pairs = [("temperature", "0.2"), ("max_tokens", "50"), ("stop", "END"), ("tool_choice", "x")]
    assert parse_params(pairs) == {
        "temperature": 0.2,
        "max_tokens": 50,
        "stop": ["END"],
        "tool_choice": "x",
    }
    with pytest.raises(ConfigError, match=r"^-o: max_tokens: input should be greater than 0"):
        parse_params([("max_tokens", "0")])


def test_a_misspelt_option_fails_with_the_valid_ones_listed() -> None:
    result = tether("run", "hi", "-o", "temprature", "0.2")
    assert result.exit_code == 1
    assert "-o: unknown parameter 'temprature' (did you mean 'temperature'?)" in result.stderr
    assert "valid parameters: temperature, top_p, max_tokens" in result.stderr
    assert "validation error" not in result.output  # a sentence, not a pydantic dump
    assert "Traceback" not in result.output


def test_an_unknown_model_fails_with_the_known_providers_listed() -> None:
    result = tether("run", "hi", "-m", "nope:x")
    assert result.exit_code == 1
    assert "unknown model 'nope:x'" in result.stderr
    for provider in ("openai:NAME", "anthropic:NAME", "local:NAME"):
        assert provider in result.stderr
    assert "Traceback" not in result.output


def test_the_installed_command_prints_one_red_line_not_a_traceback() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tether.cli.main", "run", "hi", "-m", "nope:x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("error: unknown model 'nope:x'")


def test_help_imports_no_provider_sdk_or_tracing() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from tether.cli.main import app\n"
        "assert CliRunner().invoke(app, ['--help']).exit_code == 0\n"
        "heavy = ('openai', 'anthropic', 'llama_cpp', 'opentelemetry')\n"
        "print([name for name in heavy if name in sys.modules])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_chat_answers_once_then_exits() -> None:
    result = tether("chat", *SHORT, input="hi\n/exit\n")
    assert result.exit_code == 0, result.output
    assert result.stdout.count("model>") == 1
    assert len(FOOTER.findall(result.stderr)) == 1


def test_chat_keeps_history_until_reset() -> None:
    result = tether("chat", *SHORT, input="hi\nhi\n/reset\nhi\n")  # ends at end of input
    assert result.exit_code == 0, result.output
    assert "history cleared" in result.stderr
    flush()
    first, second, after_reset = [
        call["input_tokens"] for call in reversed(recent_calls(load_settings().db_path))
    ]
    assert second > first  # the second turn carries the first question and its answer
    assert after_reset == first


def test_models_json_lists_the_local_model_and_openai_prices() -> None:
    result = tether("models", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert rows["local:smollm2"]["kind"] == "local"
    assert rows["local:smollm2"]["input_per_million"] == 0.0
    mini = rows["openai:gpt-4.1-mini"]
    assert (mini["input_per_million"], mini["output_per_million"]) == (0.40, 1.60)
    assert rows["anthropic:claude-sonnet-4-5"]["output_per_million"] == 15.0


def test_models_check_names_the_missing_key_and_verifies_the_local_file() -> None:
    result = tether("models", "--check", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert rows["openai:gpt-4.1-mini"]["reachable"] is False
    assert rows["openai:gpt-4.1-mini"]["detail"] == "OPENAI_API_KEY is missing"
    assert rows["local:smollm2"]["reachable"] is True
    table = tether("models", "--check")
    assert "OPENAI_API_KEY is missing" in table.stdout


@pytest.fixture
def models_server() -> Iterator[str]:
    """A server that answers GET /v1/models as an OpenAI-compatible one would."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/v1/models" else 404)
            self.end_headers()
            self.wfile.write(b'{"object": "list", "data": []}')

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_models_check_asks_each_endpoint_for_its_models(project: Path, models_server: str) -> None:
    closed = "http://127.0.0.1:9/v1"  # the discard port: nothing listens there
    (project / "tether.toml").write_text(
        f'[endpoints.up]\nbase_url = "{models_server}"\n'
        f'[endpoints.down]\nbase_url = "{closed}"\n'
        '[models.near]\nid = "up:smollm2"\n'
    )
    result = tether("models", "--check", "--json")
    assert result.exit_code == 0, result.output
    rows = {row["id"]: row for row in json.loads(result.stdout)}
    assert rows["up:*"]["reachable"] is True
    assert rows["near"]["reachable"] is True
    assert rows["down:*"]["reachable"] is False
    assert "did not answer" in rows["down:*"]["detail"]


def test_logs_show_a_call_just_made() -> None:
    assert tether("run", "Name a colour.", *SHORT).exit_code == 0
    flush()
    result = tether("logs")
    assert result.exit_code == 0, result.output
    assert "local:smollm2" in result.stdout
    assert " ok " in result.stdout  # the prompt column's width depends on the others: see --full
    assert "could not be stored" not in result.output
    full = tether("logs", "--full", "--limit", "1")
    assert "user: Name a colour." in full.stdout


def test_logs_json_is_a_list_of_calls_with_usage() -> None:
    for prompt in ("Say hi.", "Say bye."):
        assert tether("run", prompt, *SHORT).exit_code == 0
    flush()
    result = tether("logs", "--json", "--limit", "1")
    assert result.exit_code == 0, result.output
    calls = json.loads(result.stdout)
    assert isinstance(calls, list) and len(calls) == 1
    call = calls[0]
    assert call["model"] == "local:smollm2"
    assert call["status"] == "ok"
    assert call["input_tokens"] > 5 and 0 < call["output_tokens"] <= 8
    assert call["cost_usd"] == 0.0
    assert "Say bye." in call["prompt"]
    assert tether("logs", "--json", "-m", "openai:gpt-5").stdout.strip() == "[]"


def test_logs_report_spans_that_could_not_be_stored(project: Path) -> None:
    # A file where the .tether folder should be: the database cannot be created, even as root.
    (project / ".tether").write_text("not a folder")
    result = tether("run", "Say hi.", *SHORT)
    assert result.exit_code == 0, result.output  # a trace failure never fails the call
    flush()
    logs = tether("logs")
    assert logs.exit_code == 0, logs.output
    match = re.search(r"(\d+) spans? could not be stored \((.+)\)", logs.stderr)
    assert match, logs.output
    assert int(match[1]) >= 1
    assert match[2]


def test_logs_read_the_losses_recorded_beside_the_database(project: Path) -> None:
    """As another process left them: the database could not be opened, its folder could."""
    db_path = load_settings().db_path
    db_path.parent.mkdir()
    record = {"at_ns": 1, "count": 3, "reason": "OperationalError: disk I/O error"}
    loss_file(db_path).write_text(json.dumps(record) + "\n")
    assert loss_file(db_path).resolve().parent == (project / ".tether").resolve()
    logs = tether("logs")
    assert logs.exit_code == 0, logs.output
    assert "3 spans could not be stored (OperationalError: disk I/O error)" in logs.stderr


def test_init_writes_a_file_that_loads_and_will_not_overwrite_it(project: Path) -> None:
    result = tether("init")
    assert result.exit_code == 0, result.output
    settings = load_settings(project / "tether.toml")
    assert settings.default_model == "local:smollm2"
    assert settings.models["fast"].fallbacks == ["local:smollm2"]
    assert settings.models["fast"].params["max_tokens"] == 512
    assert settings.endpoints["llamacpp"].base_url.startswith("http://127.0.0.1")
    assert settings.routers["support"].default == "simple"
    from tether.models.registry import model

    assert model("support", settings=settings).generate("hi", max_tokens=2).model == "local:smollm2"
    assert settings.tracing.content == "truncated"
    assert settings.local.n_ctx == 2048
    again = tether("init")
    assert again.exit_code == 1
    assert "already exists" in again.stderr and "--force" in again.stderr
    assert tether("init", "--force").exit_code == 0


def test_demo_runs_the_whole_tour() -> None:
    result = tether("demo")
    assert result.exit_code == 0, result.output
    assert "get_weather called with {'city':" in result.stdout
    assert re.search(r"Contact\(name='[^']*', email='[^']*'\)", result.stdout)
    assert result.stdout.count("you>") == 4  # three chat turns and the question to the docs
    chats = [
        c for c in recent_calls(load_settings().db_path, limit=200) if c["name"].startswith("chat ")
    ]
    assert len(chats) == 6  # the five steps' calls and the cited answer's
    assert "$0" in result.stdout
    assert "docs/retrieval.md" in result.stdout  # the answer's citation
