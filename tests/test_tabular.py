"""NAS-Bench-201 table, loader and tabular evaluator, checked against the published numbers."""
from __future__ import annotations

import csv
import gzip
import importlib.util
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

from rlnas.data.nb201 import NB201_TABLE_PATH, load_nb201_table
from rlnas.errors import ConfigError, InvalidCandidate
from rlnas.evaluators import Evaluator, create_evaluator
from rlnas.evaluators.tabular import NB201Evaluator
from rlnas.spaces.base import Candidate, Categorical, Space
from rlnas.spaces.nb201 import NB201Space

REPO = Path(__file__).resolve().parents[1]
RAW = REPO.parent / "shared" / "data" / "nasbench201"
needs_raw = pytest.mark.skipif(not RAW.is_dir(), reason=f"raw NAS-Bench-201 CSVs not found at {RAW}")

BEST_C10 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
SPACE = NB201Space()


@pytest.fixture(scope="module")
def table():
    return load_nb201_table()


def test_table_shape_and_order(table):
    assert len(table) == 15625 and len(set(table.arch_str)) == 15625
    assert table.datasets == ("cifar10", "cifar100", "imagenet16-120")
    for name in ("valid_acc", "test_acc", "valid_acc_12ep", "test_acc_12ep", "params_m", "train_time_s"):
        assert getattr(table, name).shape == (3, 15625)
        assert np.isfinite(getattr(table, name)).all()
    assert table.seed_acc.shape == (3, 15625, 3)
    assert len(table.latency_devices) == table.latency_ms.shape[0] == 27
    assert table.index_of(BEST_C10) == 6111 and table.arch_str[6111] == BEST_C10
    assert not table.valid_acc.flags.writeable
    assert load_nb201_table() is table
    # Every key of the space is in the table, and the table's strings parse back to themselves.
    assert all(SPACE.key(SPACE.from_key(a)) == a for a in table.arch_str[:200])
    with pytest.raises(InvalidCandidate):
        table.index_of("|none~0|")


def test_seed_padding(table):
    assert set(np.unique(table.n_seeds)) == {2, 3}
    assert (table.n_seeds == 2).sum() == 7456 and (table.n_seeds == 3).sum() == 8169
    present = ~np.isnan(table.seed_acc)
    assert (present.sum(axis=2) == table.n_seeds).all()
    assert not present[:, table.n_seeds == 2, 2].any()


def test_published_sanity_numbers(table):
    c10v, c100, in16 = table.valid_acc
    assert int(np.argmax(c10v)) == 6111 and round(c10v.max(), 3) == 91.607
    assert round(table.test_acc[0, 6111], 3) == 94.373 and round(table.test_acc[0].max(), 3) == 94.373
    assert int(np.argmax(c100)) == 9930 and round(c100.max(), 3) == 73.493
    assert round(table.test_acc[1, 9930], 3) == 73.513
    assert int(np.argmax(table.test_acc[2])) == 857 and round(table.test_acc[2].max(), 3) == 47.311
    assert int(np.argmax(in16)) == 10676 and round(in16.max(), 3) == 46.733
    assert round(c10v.mean(), 3) == 83.674
    assert round(table.test_acc[0].mean(), 3) == 87.063
    assert round(table.test_acc[1].mean(), 3) == 61.388
    assert round(table.test_acc[2].mean(), 3) == 33.568
    assert round(table.valid_acc_12ep[0].mean(), 3) == 68.852 and round(table.valid_acc_12ep[0].max(), 3) == 84.892
    assert round(table.test_acc_12ep[0].mean(), 3) == 75.984 and round(table.test_acc_12ep[0].max(), 2) == 89.16
    assert (table.test_acc[0] == 10.0).sum() == 341
    assert table.params_m[0].min() == pytest.approx(0.0733, abs=1e-4)
    assert table.params_m[0].max() == pytest.approx(1.532, abs=1e-3)
    assert round(table.train_time_s[0].min()) == 542 and round(table.train_time_s[0].max()) == 3461
    # HW-NAS-Bench columns: a degenerate cell is almost free on the phone.
    assert round(table.latency_ms[table.latency_devices.index("pixel3")].min(), 3) == 0.003


def _raw_rows(name: str) -> list[dict[str, str]]:
    with gzip.open(RAW / name, "rt", newline="") as fh:
        return list(csv.DictReader(fh))


@needs_raw
def test_rows_match_raw_csvs(table):
    merged = _raw_rows("nb201_merged.csv.gz")
    perseed = _raw_rows("nb201_perseed200_nats.csv.gz")
    rng = np.random.default_rng(7)
    for i in [0, 6111, 9930, 857, 15624, *rng.integers(15625, size=20).tolist()]:
        row = merged[i]
        assert int(row["index"]) == i and row["arch_str"] == table.arch_str[i]
        expect = {
            "valid_acc": ("c10v_valid_acc", "c100_valid_acc", "in16_valid_acc"),
            "test_acc": ("c10_test_acc", "c100_test_acc", "in16_test_acc"),
            "valid_acc_12ep": ("c10v_valid_acc_12ep", "c100_valid_acc_12ep", "in16_valid_acc_12ep"),
            "test_acc_12ep": ("c10_test_acc_12ep", "c100_test_acc_12ep", "in16_test_acc_12ep"),
            "params_m": ("params_mb_c10", "params_mb_c100", "params_mb_in16"),
            "train_time_s": ("train_time_s_c10v", "train_time_s_c100", "train_time_s_in16"),
        }
        corrected = {"params_m": table.params_from_closed_form[i],  # see NB201.md, "Corrected cells"
                     "train_time_s": table.train_time_estimated[:, i].any()}
        for field, columns in expect.items():
            for d, col in enumerate(columns):
                if not corrected.get(field, False):
                    assert getattr(table, field)[d, i] == float(row[col]), (field, col, i)
        for k, dev in enumerate(table.latency_devices):
            assert table.latency_ms[k, i] == float(row[f"lat_ms_{dev}"])
        assert table.n_seeds[i] == int(row["n_seeds"])
        seeds = [r for r in perseed if int(r["index"]) == i]
        assert len(seeds) == table.n_seeds[i]
        for s, r in enumerate(seeds):
            assert table.seed_labels[s] == int(r["seed"])
            for d, col in enumerate(("c10v_valid_acc", "c100_valtest_acc", "in16_valtest_acc")):
                assert table.seed_acc[d, i, s] == float(r[col])


def test_evaluate_default_is_seed_mean_cifar10():
    ev = NB201Evaluator()
    m = ev.evaluate(SPACE.from_key(BEST_C10))
    assert round(m.metrics["valid_acc"], 3) == 91.607
    assert round(m.metrics["test_acc"], 3) == 94.373
    assert m.metrics["params_m"] == pytest.approx(1.073466)
    assert m.metrics["latency_ms"] == pytest.approx(23.5848)  # HW-NAS-Bench pixel3
    assert m.cost_seconds == m.metrics["train_time_s"] > 0
    assert m.info == {"index": 6111, "arch_str": BEST_C10}
    assert isinstance(ev, Evaluator)
    # A plain dict works too, and gives the same answer as the Candidate (cached) path.
    again = ev.evaluate(dict(SPACE.from_key(BEST_C10)))
    assert again.metrics == m.metrics and ev.evaluate(SPACE.from_key(BEST_C10)).metrics == m.metrics


def test_datasets_and_fidelity(table):
    cand = SPACE.from_key(table.arch_str[9930])
    m = NB201Evaluator("cifar100").evaluate(cand)
    assert round(m.metrics["valid_acc"], 3) == 73.493 and round(m.metrics["test_acc"], 3) == 73.513
    assert m.metrics["params_m"] == table.params_m[1, 9930]
    m12 = NB201Evaluator("cifar100", fidelity=12).evaluate(cand)
    assert m12.metrics["valid_acc"] == table.valid_acc_12ep[1, 9930]
    assert m12.metrics["test_acc"] == m.metrics["test_acc"]  # always the 200-epoch number
    assert m12.cost_seconds == pytest.approx(m.cost_seconds * 12 / 200)
    m16 = NB201Evaluator("ImageNet16-120", latency_device="fpga").evaluate(SPACE.from_key(table.arch_str[857]))
    assert round(m16.metrics["test_acc"], 3) == 47.311
    assert m16.metrics["latency_ms"] == table.latency_ms[table.latency_devices.index("fpga"), 857]
    assert m16.metrics["train_time_s"] == table.train_time_s[2, 857]


def test_optimum_helpers():
    ev = NB201Evaluator()
    assert ev.optimum() == (BEST_C10, pytest.approx(91.6066666, abs=1e-6))
    assert ev.optimum("test_acc")[0] == BEST_C10
    assert round(ev.test_acc_of_best_valid(), 3) == 94.373
    c100 = NB201Evaluator("cifar100")
    assert c100.optimum()[0] == c100.table.arch_str[9930] and round(c100.test_acc_of_best_valid(), 3) == 73.513
    ev12 = NB201Evaluator(fidelity=12)
    assert round(ev12.optimum()[1], 3) == 84.892
    with pytest.raises(ConfigError, match="choices"):
        ev.optimum("latency_ms")


def test_lookup_lists_everything():
    info = NB201Evaluator("cifar100").lookup(BEST_C10)
    assert info["index"] == 6111 and info["dataset"] == "cifar100"
    assert info["valid_acc"] == info["valid_acc_200"]
    assert len(info["latency_ms_all"]) == 27 and info["latency_ms"] == info["latency_ms_all"]["pixel3"]
    assert len(info["seed_acc"]) == len(info["seed_valid_acc"]) == info["n_seeds"] == len(info["seed_labels"])
    assert NB201Evaluator().lookup(SPACE.from_key(BEST_C10))["index"] == 6111


def test_noisy_same_seed_same_value_and_values_from_seed_set(table):
    ev = NB201Evaluator(noisy=True)
    cand = SPACE.from_key(BEST_C10)
    seeds = table.seed_acc[0, 6111, :3].tolist()
    draws = [ev.evaluate(cand, seed=s) for s in range(40)]
    assert {m.metrics["valid_acc"] for m in draws} == set(seeds)  # all three seeds show up
    for s, m in enumerate(draws):
        assert ev.evaluate(cand, seed=s).metrics == m.metrics
        slot = seeds.index(m.metrics["valid_acc"])
        assert m.info["train_seed"] == table.seed_labels[slot]
        assert m.metrics["test_acc"] == table.test_acc[0, 6111]  # the reported number is not noisy
    assert NB201Evaluator(noisy=True).evaluate(cand, seed=3).metrics == draws[3].metrics


def test_noisy_cifar100_shifts_the_valid_mean_by_the_valtest_deviation(table):
    ev = NB201Evaluator("cifar100", noisy=True)
    i = int(np.flatnonzero(table.n_seeds == 2)[0])
    raw = table.seed_acc[1, i, :2]
    half_gap = abs(raw[0] - raw[1]) / 2
    expected = [table.valid_acc[1, i] - half_gap, table.valid_acc[1, i] + half_gap]
    got = sorted({ev.evaluate(SPACE.from_key(table.arch_str[i]), seed=s).metrics["valid_acc"] for s in range(30)})
    assert got == pytest.approx(expected) and half_gap > 0
    assert ev.lookup(table.arch_str[i])["seed_valid_acc"] == pytest.approx([table.valid_acc[1, i] + raw[0] - raw.mean(),
                                                                           table.valid_acc[1, i] + raw[1] - raw.mean()])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dataset": "mnist"}, "cifar10, cifar100, imagenet16-120"),
        ({"fidelity": 50}, "200, 12"),
        ({"latency_device": "iphone"}, "pixel3"),
        ({"noisy": True, "fidelity": 12}, "fidelity=200"),
        ({"noisy": "yes"}, "true or false"),
    ],
)
def test_bad_options(options, message):
    with pytest.raises(ConfigError, match=message) as err:
        NB201Evaluator(**options)
    assert "\n" not in str(err.value)


def test_bad_candidates():
    ev = NB201Evaluator()
    other = Space("toy", [Categorical("x", (0, 1))])
    with pytest.raises(InvalidCandidate, match="nb201"):
        ev.evaluate(other.from_indices([1]))
    broken = dict(SPACE.from_indices([0] * 6))
    broken["edge_0_1"] = "conv_5x5"
    with pytest.raises(InvalidCandidate, match="conv_5x5"):
        ev.evaluate(Candidate(broken))
    with pytest.raises(InvalidCandidate):
        ev.evaluate(BEST_C10)  # a string is not a candidate
    with pytest.raises(InvalidCandidate):
        ev.lookup("not an arch")


def test_spec_round_trip():
    ev = NB201Evaluator("cifar100", fidelity=12, latency_device="raspi4")
    spec = ev.spec()
    assert spec == {"name": "nb201", "dataset": "cifar100", "fidelity": 12, "noisy": False,
                    "latency_device": "raspi4"}
    rebuilt = create_evaluator(spec.pop("name"), **spec)
    assert rebuilt == ev and hash(rebuilt) == hash(ev) and rebuilt != NB201Evaluator("cifar100")
    cand = SPACE.from_indices([3, 3, 3, 1, 3, 2])
    assert rebuilt.evaluate(cand) == ev.evaluate(cand)
    blob = pickle.dumps(ev)
    assert len(blob) < 1000 and pickle.loads(blob) == ev  # pickled as its options, not the table


@needs_raw
def test_build_script_reproduces_shipped_file(tmp_path):
    spec = importlib.util.spec_from_file_location("build_nb201_table", REPO / "scripts" / "build_nb201_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out, doc = tmp_path / "nb201.npz", tmp_path / "NB201.md"
    shipped_doc = NB201_TABLE_PATH.with_name("NB201.md")
    doc.write_text(shipped_doc.read_text(encoding="utf-8").replace("<!-- end", "stale text <!-- end"), encoding="utf-8")
    assert module.main([str(RAW), "--out", str(out), "--doc", str(doc)]) == 0
    assert doc.read_bytes() == shipped_doc.read_bytes()  # the corrections section is the script's
    with zipfile.ZipFile(out) as new, zipfile.ZipFile(NB201_TABLE_PATH) as shipped:
        assert new.namelist() == shipped.namelist()
        for name in shipped.namelist():
            assert new.read(name) == shipped.read(name), name
    assert out.read_bytes() == NB201_TABLE_PATH.read_bytes()
    rebuilt = load_nb201_table(out)
    assert rebuilt.arch_str == load_nb201_table().arch_str


def test_a_table_of_another_format_is_refused_and_arrays_are_read_only(tmp_path):
    from rlnas.data.nbgraph import NBGRAPH_TABLE_PATH, load_nbgraph_table

    for path, load, name in [(NB201_TABLE_PATH, load_nb201_table, "NB201"),
                             (NBGRAPH_TABLE_PATH, load_nbgraph_table, "NAS-Bench-Graph")]:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        arrays["format_version"] = np.array(int(arrays["format_version"]) + 1)
        other = tmp_path / f"{name}.npz"
        np.savez(other, **arrays)
        with pytest.raises(ValueError, match=f"^{name} table format {int(arrays['format_version'])} is not supported"):
            load(str(other))
    table = load_nb201_table()
    with pytest.raises(ValueError, match="read-only"):
        table.test_acc[0, 0] = 0.0


class DelayedNB201(NB201Evaluator):
    """A user's subclass with an option of its own."""

    def __init__(self, delay: float = 0.0, **options):
        super().__init__(**options)
        self.delay = delay


class ShiftedNB201(NB201Evaluator):
    """A subclass whose option the base's __init__ reads (through an override), so it is set first."""

    def __init__(self, shift: float = 0.0, **options):
        self.shift = shift
        super().__init__(**options)

    def _reward_array(self):
        return super()._reward_array() + self.shift


def test_a_subclass_of_a_table_evaluator_stays_that_subclass_in_worker_processes():
    import pickle

    from rlnas.evaluators.nbgraph import NBGraphEvaluator

    copy = pickle.loads(pickle.dumps(DelayedNB201(delay=0.25, dataset="cifar100", fidelity=12)))
    assert type(copy) is DelayedNB201 and copy.delay == 0.25  # (it came back as NB201Evaluator, without delay)
    assert (copy.dataset, copy.fidelity) == ("cifar100", 12) and copy.table is not None
    assert type(pickle.loads(pickle.dumps(NB201Evaluator()))) is NB201Evaluator
    assert len(pickle.dumps(NB201Evaluator())) < 1000  # the options, not the table
    assert pickle.loads(pickle.dumps(NBGraphEvaluator("cora"))).dataset == "cora"
    shifted = pickle.loads(pickle.dumps(ShiftedNB201(shift=1.0)))  # (AttributeError: no attribute 'shift')
    assert shifted._reward == (NB201Evaluator()._reward_array() + 1.0).tolist()
