"""How a search's failures are summed up: by kind, so messages that name their trial still add up."""
from __future__ import annotations

from types import SimpleNamespace

from rlnas.cli.summary import failure_kind, most_common_failure
from rlnas.trial import TrialState


def failed(*errors: str) -> list[SimpleNamespace]:
    return [SimpleNamespace(state=TrialState.FAIL, orphaned=False, error=e) for e in errors]


def test_failures_that_name_their_rule_are_counted_by_kind():
    trials = failed("RuleDiverged: rule 'a' diverged at every learning rate (nan)",
                    "RuleDiverged: rule 'b' diverged at every learning rate (inf)",
                    "RuleDiverged: rule 'a' diverged at every learning rate (nan)",
                    "timeout: still running after 60 s", "timeout: still running after 60 s")
    trials.append(SimpleNamespace(state=TrialState.FAIL, orphaned=True, error="timeout: still running after 60 s"))
    trials.append(SimpleNamespace(state=TrialState.COMPLETE, orphaned=False, error=None))
    assert most_common_failure(trials) == (
        "RuleDiverged, e.g. rule 'a' diverged at every learning rate (nan)", 3)


def test_one_message_many_times_is_said_as_it_is():
    assert most_common_failure(failed("ValueError: boom", "ValueError: boom", "worker died (exit code 9)")) == (
        "ValueError: boom", 2)
    assert most_common_failure(failed("the evaluator reported metric 'x'", "")) == (
        "the evaluator reported metric 'x'", 1)
    assert most_common_failure(failed()) == (None, 0)


def test_the_kind_is_the_name_before_the_colon_or_the_whole_text():
    assert failure_kind("TrainingDiverged: loss nan at step 3") == "TrainingDiverged"
    assert failure_kind("rlnas.errors.Oops: x") == "rlnas.errors.Oops"
    assert failure_kind("worker died (exit code 9) after 2 tries: x") == "worker died (exit code 9) after 2 tries: x"
