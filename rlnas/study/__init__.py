"""Studies: what a search is (:class:`StudySpec`), how one run goes (:class:`RunOptions`), and the
:class:`Study` that drives it (ask / tell, checkpoints and exact resume, one driver per study)."""
from rlnas.study._factories import check_name, create_study, evaluator_spec, load_study, resolve_space, space_of
from rlnas.study._study import (
    DEFAULT_CHECKPOINT_EVERY,
    ORPHAN_REASON,
    WEIGHT_SHARING_ANSWER,
    Study,
    best_of,
    evaluation_seed,
    found_trial,
    is_better,
)
from rlnas.study.lease import LeaseLost, StudyBusy
from rlnas.study.spec import Callback, RunOptions, StudySpec
from rlnas.study.transfer import check_transfer_source

__all__ = [
    "Study", "StudySpec", "RunOptions", "Callback", "create_study", "load_study", "space_of", "resolve_space",
    "evaluator_spec", "check_name", "best_of", "found_trial", "WEIGHT_SHARING_ANSWER", "is_better",
    "check_transfer_source", "evaluation_seed",
    "DEFAULT_CHECKPOINT_EVERY", "ORPHAN_REASON", "StudyBusy", "LeaseLost",
]
