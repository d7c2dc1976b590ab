"""The data setting: --data, else TETHER_DATA, else ../shared/data; for pytest and benchmarks."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import pytest

import data_sets

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parents[1]

NEEDS_DATA = """
def test_reads_the_file(data_sets):
    assert data_sets.path("set/file.txt").read_text() == "{expected}"
"""


def folder_with(path: Path, text: str) -> Path:
    (path / "set").mkdir(parents=True)
    (path / "set" / "file.txt").write_text(text)
    return path


def run(pytester: pytest.Pytester, expected: str, *args: str) -> pytest.RunResult:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_needs_data=NEEDS_DATA.format(expected=expected))
    return pytester.runpytest("-p", "data_sets", "-p", "no:cacheprovider", *args)


def test_data_at_the_default_place_is_read(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TETHER_DATA", raising=False)
    monkeypatch.setattr(data_sets, "DEFAULT", folder_with(tmp_path / "default", "default"))
    run(pytester, "default").assert_outcomes(passed=1)


def test_missing_default_data_skips_with_one_line_saying_how_to_get_it(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TETHER_DATA", raising=False)
    monkeypatch.setattr(data_sets, "DEFAULT", tmp_path / "nowhere")
    result = run(pytester, "x", "-q")
    result.assert_outcomes(skipped=1)
    lines = [line for line in result.outlines if "set/file.txt" in line]
    assert len(lines) == 1, result.outlines
    assert "TETHER_DATA" in lines[0] and "tests/fixtures/README.md" in lines[0]


def test_the_environment_overrides_the_default(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(data_sets, "DEFAULT", folder_with(tmp_path / "default", "default"))
    monkeypatch.setenv("TETHER_DATA", str(folder_with(tmp_path / "env", "env")))
    run(pytester, "env").assert_outcomes(passed=1)


def test_the_flag_overrides_the_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TETHER_DATA", str(folder_with(tmp_path / "env", "env")))
    flag = folder_with(tmp_path / "flag", "flag")
    run(pytester, "flag", f"--data={flag}").assert_outcomes(passed=1)


def test_named_data_that_is_missing_fails_rather_than_skips(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TETHER_DATA", str(tmp_path / "empty"))
    result = run(pytester, "x")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*set/file.txt is not in*named by --data or TETHER_DATA*"])


# -- the benchmarks' --data --------------------------------------------------------------


@pytest.fixture
def common(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """bench/_common.py, with bench/ on the path as when a script runs from there."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import _common

    return _common


def bench_args(common: ModuleType, *argv: str) -> object:
    return common.parser("a benchmark", runs=1, quick_runs=1).parse_args(list(argv))


def test_a_benchmark_finds_its_data_by_flag_environment_or_default(
    common: ModuleType, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TETHER_DATA", raising=False)
    default = folder_with(tmp_path / "default", "default")
    monkeypatch.setattr(common, "DATA_DEFAULT", default)
    assert common.data_file(bench_args(common), "set/file.txt") == default / "set/file.txt"
    env = folder_with(tmp_path / "env", "env")
    monkeypatch.setenv("TETHER_DATA", str(env))
    assert common.data_file(bench_args(common), "set/file.txt") == env / "set/file.txt"
    flag = folder_with(tmp_path / "flag", "flag")
    found = common.data_file(bench_args(common, "--data", str(flag)), "set/file.txt")
    assert found == flag / "set/file.txt"


def test_a_benchmark_without_its_data_says_so_in_one_line(
    common: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("TETHER_DATA", raising=False)
    monkeypatch.setattr(common, "DATA_DEFAULT", tmp_path / "nowhere")
    monkeypatch.setattr(sys, "argv", ["structured_extraction.py"])
    with pytest.raises(SystemExit) as default_missing:
        common.data_file(bench_args(common), "set/file.txt")
    assert default_missing.value.code == 0  # a clone without the data: nothing to run
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("structured_extraction.py: not run: it needs set/file.txt")
    assert "--data or $TETHER_DATA" in line

    with pytest.raises(SystemExit) as named_missing:
        common.data_file(bench_args(common, "--data", str(tmp_path / "empty")), "set/file.txt")
    assert named_missing.value.code == 1  # asked-for data that is not there
    (line,) = capsys.readouterr().err.splitlines()
    assert "named by --data" in line
