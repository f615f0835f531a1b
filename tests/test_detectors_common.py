"""Conformance checks run over every detector class (river / scikit-learn style)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from Levenshtein import distance
from sklearn.ensemble import IsolationForest

from logwatch.detectors import NoveltyDetector, StreamDetector
from logwatch.errors import NotFittedError

NAMES = ("a", "b", "c")
DETECTORS = [StreamDetector]


def training(seed: int = 0, n: int = 300) -> list[list[float]]:
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.0, size=(n, len(NAMES))).tolist()


@pytest.mark.parametrize("cls", DETECTORS, ids=lambda c: c.__name__)
def test_init_only_stores_parameters(cls: type[StreamDetector]) -> None:
    det = cls(n_estimators=7, random_state=3)
    assert det.get_params()["n_estimators"] == 7
    assert not [k for k in vars(det) if k.endswith("_")]  # nothing learned before fit


@pytest.mark.parametrize("cls", DETECTORS, ids=lambda c: c.__name__)
def test_fit_returns_self_and_sets_learned_state(cls: type[StreamDetector]) -> None:
    det = cls(random_state=0)
    assert det.fit(training(), NAMES) is det
    assert det.feature_names_ == NAMES
    assert det.n_samples_seen_ == 300
    assert len(det.train_scores_) == 300


@pytest.mark.parametrize("cls", DETECTORS, ids=lambda c: c.__name__)
def test_score_before_fit_raises(cls: type[StreamDetector]) -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        cls().score([[0.0, 0.0, 0.0]])


@pytest.mark.parametrize("cls", DETECTORS, ids=lambda c: c.__name__)
def test_higher_score_means_more_anomalous(cls: type[StreamDetector]) -> None:
    det = cls(random_state=0).fit(training(), NAMES)
    normal, outlier = det.score([[0.0, 0.0, 0.0], [9.0, -9.0, 9.0]])
    assert outlier > normal
    tail_normal, tail_outlier = det.tail(np.array([normal, outlier]))
    assert tail_outlier == pytest.approx(1 / 301)  # beyond every training score
    assert tail_normal > 0.3


@pytest.mark.parametrize("cls", DETECTORS, ids=lambda c: c.__name__)
def test_seeding_is_idempotent(cls: type[StreamDetector]) -> None:
    probe = training(seed=9, n=50)
    a = cls(random_state=5).fit(training(), NAMES).score(probe)
    b = cls(random_state=5).fit(training(), NAMES).score(probe)
    c = cls(random_state=6).fit(training(), NAMES).score(probe)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("cls", DETECTORS, ids=lambda c: c.__name__)
def test_state_round_trip_scores_bit_identically(cls: type[StreamDetector]) -> None:
    det = cls(n_estimators=50, random_state=1).fit(training(), NAMES)
    state = det.to_state()
    # The persisted state is plain JSON-able data: nothing that could execute on load.
    import json

    state = json.loads(json.dumps(state))
    assert set(state) == {"params", "feature_names"}  # the rows are the caller's to store
    again = cls.from_state(state["params"], state["feature_names"], training())
    probe = training(seed=4, n=40)
    assert np.array_equal(det.score(probe), again.score(probe))


@pytest.mark.parametrize("cls", DETECTORS, ids=lambda c: c.__name__)
def test_fit_rejects_malformed_input_with_a_clear_message(cls: type[StreamDetector]) -> None:
    with pytest.raises(ValueError, match="at least 2 rows of 3 features"):
        cls().fit([[1.0, 2.0]], NAMES)


def test_novelty_identical_and_unrelated() -> None:
    nov = NoveltyDetector()
    assert nov.nearest("user <*> logged in", ["user <*> logged in", "disk full"]) == (
        0.0,
        "user <*> logged in",
    )
    d, nearest = nov.nearest("kernel panic: not syncing", ["user <*> logged in"])
    assert d > 0.6 and nearest == "user <*> logged in"
    assert nov.nearest("anything", []) == (1.0, None)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30), st.lists(st.text(max_size=30), max_size=12))
def test_novelty_equals_brute_force(text: str, candidates: list[str]) -> None:
    """The length cut-offs and score_cutoff never change the answer, only the cost."""
    got, _ = NoveltyDetector().nearest(text, candidates)
    expected = min([distance(text, c) / max(len(text), len(c), 1) for c in candidates], default=1.0)
    assert got == pytest.approx(min(expected, 1.0))


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    rows=st.integers(1, 400),
    max_samples=st.sampled_from(["auto", 16, 300]),
    integers=st.booleans(),
)
def test_direct_scores_are_scikit_learns_to_the_bit(
    seed: int, rows: int, max_samples: int | str, integers: bool
) -> None:
    """The direct walk of the trees (a ~10x cheaper call) gives score_samples' values exactly,
    on batches of any size, ties and repeated values included."""
    rng = np.random.default_rng(seed)
    train = rng.normal(0.0, 1.0, size=(300, len(NAMES)))
    batch = rng.normal(0.0, 3.0, size=(rows, len(NAMES)))
    if integers:  # features like the pipeline's: many equal values, clipped ranges
        train, batch = np.round(train), np.clip(np.round(batch), -2, 5)
    det = StreamDetector(n_estimators=20, max_samples=max_samples, random_state=seed).fit(
        train.tolist(), NAMES
    )
    assert det.direct_
    assert det.forest_ is None  # the walk's own arrays are all the model keeps
    forest = IsolationForest(n_estimators=20, max_samples=max_samples, random_state=seed)
    expected = -forest.fit(train).score_samples(batch)  # fitting is seeded: the same trees
    assert np.array_equal(det.score(batch.tolist()), expected)


def test_repeated_rows_each_get_their_own_score_in_place() -> None:
    """The walk scores a batch's distinct rows once each; every row of the batch still gets the
    score it has alone, in its own place, -0.0 and 0.0 included."""
    det = StreamDetector(n_estimators=20, random_state=3).fit(training(), NAMES)
    assert det.direct_  # the walk, not scikit-learn's fallback, is what is tested
    distinct = [[0.0] * len(NAMES), [-0.0] * len(NAMES), [4.0] + [0.0] * (len(NAMES) - 1)]
    distinct.append([9.5] * len(NAMES))
    order = [3, 0, 0, 2, 1, 3, 0, 2, 2, 1, 0, 3]
    batch = [distinct[i] for i in order]
    alone = [float(det.score([row])[0]) for row in distinct]
    assert det.score(batch).tolist() == [alone[i] for i in order]
    assert len(set(alone)) >= 3  # not one score for everything: the places matter
    forest = IsolationForest(n_estimators=20, random_state=3).fit(np.asarray(training()))
    assert np.array_equal(det.score(batch), -forest.score_samples(np.asarray(batch)))


def test_scores_fall_back_to_scikit_learn_when_the_direct_walk_disagrees(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Checked at fit: a scikit-learn whose internals changed is used as it is."""
    monkeypatch.setattr(StreamDetector, "_direct", lambda self, m: np.zeros(len(m)))
    det = StreamDetector(random_state=0).fit(training(), NAMES)
    assert not det.direct_
    batch = training(seed=5, n=40)
    assert np.array_equal(det.score(batch), -det.forest_.score_samples(np.asarray(batch)))
