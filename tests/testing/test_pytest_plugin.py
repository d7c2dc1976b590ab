"""The tether_cassette fixture, exercised in a separate pytest run with pytester."""

import pytest

pytest_plugins = ["pytester"]

TEST_FILE = """
from tether.testing import FunctionModel
from tether.models.middleware.cassette import CassetteModel

ANSWER = {"text": "first"}

def test_call(tether_cassette):
    model = CassetteModel(FunctionModel(lambda r: ANSWER["text"]))
    assert model.generate("hello").text == "first"
"""


def test_record_replay_and_unused_detection(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_app=TEST_FILE)
    missing = pytester.runpytest("-p", "no:cacheprovider")
    missing.assert_outcomes(errors=1)
    assert "--tether-record=missing" in missing.stdout.str()

    pytester.runpytest("--tether-record=missing").assert_outcomes(passed=1)
    assert (pytester.path / "cassettes" / "test_app" / "test_call.json").is_file()

    # replay answers from the cassette even though the model would now say something else
    pytester.makepyfile(test_app=TEST_FILE.replace('{"text": "first"}', '{"text": "changed"}'))
    pytester.runpytest().assert_outcomes(passed=1)

    # a recorded call that the code no longer makes fails the test
    pytester.makepyfile(
        test_app=TEST_FILE.replace('assert model.generate("hello").text == "first"', "pass")
    )
    unused = pytester.runpytest()
    unused.assert_outcomes(passed=1, errors=1)
    assert "never made" in unused.stdout.str()
