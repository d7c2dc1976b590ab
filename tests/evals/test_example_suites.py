"""The example suites in evals/ run from the CLI on real data with the embedded model (two
samples each here; the data comes from the full data sets, see tests/fixtures/README.md)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tether.cli.main import app

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
SUITES = {
    "banking77": ("banking77/test.csv", "accuracy"),
    "sroie": ("sroie/sroie_kie.jsonl", "field_match"),
    "dialogsum": ("dialogsum/dialogsum.dev.jsonl", "rouge_l"),
    "squad": ("squad_v2_dev_half/dev-v2.0.json", "abstention"),
}


@pytest.fixture
def ray_down() -> Iterator[None]:
    """The CLI starts a local Ray cluster in this process: stop it after the test."""
    yield
    import ray

    ray.shutdown()


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SUITES))
def test_an_example_suite_runs_on_its_data(
    name: str, project: Path, data_sets: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_example(name, project, data_sets, monkeypatch)


@pytest.mark.slow
def test_the_example_suites_run_on_a_local_ray_cluster(
    project: Path, data_sets: object, monkeypatch: pytest.MonkeyPatch, ray_down: None
) -> None:
    for name in sorted(SUITES):
        summary = run_example(name, project, data_sets, monkeypatch, "--backend", "ray")
        assert summary["samples"] == 2, name


def run_example(
    name: str, project: Path, data_sets: object, monkeypatch: pytest.MonkeyPatch, *args: str
) -> dict[str, Any]:
    relative, metric = SUITES[name]
    found = data_sets.path(relative)  # type: ignore[attr-defined]
    monkeypatch.setenv("TETHER_DATA", str(found.parents[len(Path(relative).parts) - 1]))
    monkeypatch.setenv("TETHER_EVAL_SLICE", "2")
    if not (project / "evals").exists():
        shutil.copytree(ROOT / "evals", project / "evals")
    result = CliRunner().invoke(app, ["eval", "run", name, "--json", *args])
    assert result.exit_code == 0, result.output
    summary: dict[str, Any] = json.loads(result.stdout)["summary"]
    assert summary["samples"] == 2 and summary["task_errors"] == 0
    assert 0.0 <= summary["metrics"][metric]["estimate"]["mean"] <= 1.0
    return summary


@pytest.mark.slow
def test_the_example_suites_run_as_pytest_tests(
    pytester: pytest.Pytester, data_sets: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    for relative, _ in SUITES.values():
        found = data_sets.path(relative)  # type: ignore[attr-defined]
        monkeypatch.setenv("TETHER_DATA", str(found.parents[len(Path(relative).parts) - 1]))
    monkeypatch.setenv("TETHER_HOME", str(pytester.path / ".tether"))
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    shutil.copytree(ROOT / "evals", pytester.path / "evals")
    result = pytester.runpytest("-p", "no:cacheprovider", "--tether-evals", "evals",
                                "--tether-eval-limit", "2")  # fmt: skip
    result.assert_outcomes(passed=len(SUITES))
