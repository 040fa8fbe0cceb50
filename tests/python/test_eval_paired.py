"""The query-by-query comparison of scripts/eval.py, on hand-computed cases."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import script_module  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "eval.py"


@pytest.fixture(scope="module")
def evaluation():
    return script_module.load(SCRIPT, "lookalike_eval_script")


def outcome(path: str, rank: int | None, ap: float, match: bool = True) -> dict:
    return {"path": path, "kind": None, "match": match, "first_correct_rank": rank, "ap": ap}


def test_sign_test_on_small_splits(evaluation):
    assert evaluation.sign_test(0, 0) == 1.0
    assert evaluation.sign_test(3, 3) == 1.0
    # 5 wins, 0 losses: both tails, 2 x (1/2)^5.
    assert evaluation.sign_test(5, 0) == pytest.approx(0.0625)
    assert evaluation.sign_test(0, 5) == pytest.approx(0.0625)
    # 9 against 1: 2 x (1 + 10) / 1024.
    assert evaluation.sign_test(9, 1) == pytest.approx(22 / 1024)


def test_paired_counts_only_queries_with_a_match_and_both_answers(evaluation):
    challenger = {"queries": [outcome("a", 1, 1.0), outcome("b", 1, 0.5), outcome("c", 3, 0.2),
                              outcome("d", 1, 1.0), outcome("neg", 1, 0.0, match=False), outcome("only-here", 1, 1.0)]}
    incumbent = {"queries": [outcome("a", 1, 1.0), outcome("b", 2, 0.25), outcome("c", 1, 0.6),
                             outcome("d", None, 0.0), outcome("neg", None, 0.0, match=False)]}
    result = evaluation.paired(challenger, incumbent)
    assert result["queries"] == 4  # a, b, c, d: not the negative, not the query the incumbent lacks
    # AP differences 0, +0.25, -0.4, +1.0: mean 0.2125.
    assert result["ap_difference"] == pytest.approx(0.2125)
    low, high = result["ap_difference_95"]
    assert low <= 0.2125 <= high
    assert result["top1_wins"] == 2 and result["top1_losses"] == 1  # b and d against c
    assert result["sign_test_p"] == pytest.approx(1.0)
    assert evaluation.paired({"overall": {}}, incumbent) is None
