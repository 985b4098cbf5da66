"""hack/bench_builds.py reads its setups (an engine package and knobs for it) or says what is wrong."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

HACK = Path(__file__).resolve().parents[2] / "hack"
OPERATOR = HACK.parent / "operator"


def load_tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_builds", HACK / "bench_builds.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_builds"] = module  # its dataclass looks its module up there
    path = list(sys.path)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = path  # it puts hack/ first, whose bench.py would shadow other imports
    return module


tool = load_tool()


def test_a_setup_names_a_package_and_its_environment() -> None:
    setup = tool.parse_setup(f"every300={OPERATOR},TK_EVERY=300,TK_STEP=131072")
    assert setup.label == "every300" and setup.package == OPERATOR.resolve()
    assert setup.env == {"TK_EVERY": "300", "TK_STEP": "131072"}
    env = tool.environment(setup)
    assert env["PYTHONPATH"].split(":")[0] == str(OPERATOR.resolve()) and env["TK_EVERY"] == "300"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("main", "expected LABEL=OPERATOR_DIR"),
        ("=operator", "expected LABEL=OPERATOR_DIR"),
        (f"x={OPERATOR},NOVALUE", "expected VAR=VALUE, not 'NOVALUE'"),
        ("x=/nowhere", "/nowhere: no tablekeeper package there"),
    ],
)
def test_a_malformed_setup_is_refused_with_what_was_expected(text: str, complaint: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=complaint):
        tool.parse_setup(text)
