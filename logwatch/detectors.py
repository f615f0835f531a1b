"""Detectors only score; deciding what is an anomaly is ``decide.py``'s job.

One score direction everywhere: **higher means more anomalous**.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import Levenshtein
import numpy as np
from numpy.typing import NDArray
from sklearn.base import BaseEstimator
from sklearn.ensemble import IsolationForest

from logwatch.errors import NotFittedError

try:  # the expected path length of an unsuccessful search; private, so only used when present
    from sklearn.ensemble._iforest import _average_path_length
except ImportError:  # pragma: no cover - another scikit-learn layout: its own scoring is used
    _average_path_length = None


class StreamDetector(BaseEstimator):  # type: ignore[misc]
    """IsolationForest over a stream's event feature vectors.

    Follows scikit-learn's estimator rules: ``__init__`` only stores parameters, ``fit`` returns
    self, learned state ends in ``_``. Persisted as its parameters plus training matrix and refitted
    on load: fitting is seeded, so the reloaded model scores bit-identically, and nothing read back
    from the database can execute code (no pickle).

    Parameters
    ----------
    n_estimators : int, default=100
    max_samples : int or "auto", default="auto"
    random_state : int, default=42

    Examples
    --------
    >>> det = StreamDetector(random_state=0).fit([[0.0], [0.1], [0.0], [0.2]] * 20, ("x",))
    >>> bool(det.score([[5.0]])[0] > det.score([[0.1]])[0])
    True
    """

    def __init__(
        self, n_estimators: int = 100, max_samples: int | str = "auto", random_state: int = 42
    ) -> None:
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.random_state = random_state

    def fit(self, X: Sequence[Sequence[float]], feature_names: Sequence[str]) -> StreamDetector:
        matrix = np.asarray(X, dtype=np.float64)
        if matrix.ndim != 2 or matrix.shape[0] < 2 or matrix.shape[1] != len(feature_names):
            raise ValueError(
                f"fit needs at least 2 rows of {len(feature_names)} features, "
                f"got shape {matrix.shape}"
            )
        forest = IsolationForest(
            n_estimators=self.n_estimators,
            max_samples=self.max_samples,
            random_state=self.random_state,
        ).fit(matrix)
        self.feature_names_ = tuple(feature_names)
        # The training rows are not kept: whoever stores the model has them (the daemon keeps
        # up to 100 fitted streams in memory, and 4,096 rows of 8 floats are 262 KB a model).
        reference = np.asarray(-forest.score_samples(matrix), dtype=np.float64)
        self.trees_, self.leaf_depths_, self.denominator_ = _walk_arrays(forest, matrix.shape[1])
        # The direct walk of the trees is used only where it gives scikit-learn's scores to the
        # last bit (checked here, on the training rows), so results never depend on it.
        self.direct_ = bool(self.trees_) and np.array_equal(self._direct(matrix), reference)
        # Once the walk is checked, the model keeps only what it reads (each tree's nodes and
        # leaf depths): without the forest object and its estimators, a model fitted on 2,000
        # rows takes 1.10 MB instead of 1.39 MB.
        self.forest_: IsolationForest | None = None if self.direct_ else forest
        if not self.direct_:  # scikit-learn scores: the walk's arrays would be dead weight
            self.trees_, self.leaf_depths_ = [], []
        # Calibration: where a score falls among the model's own training scores.
        self.train_scores_ = np.sort(reference)
        self.n_samples_seen_ = matrix.shape[0]
        return self

    def _raw(self, matrix: NDArray[np.float64]) -> NDArray[np.float64]:
        if self.direct_:
            return self._direct(matrix)
        # sklearn's score_samples is "the lower, the more abnormal"; we want high = anomalous.
        assert self.forest_ is not None  # kept whenever the direct walk is not used
        return np.asarray(-self.forest_.score_samples(matrix), dtype=np.float64)

    def _direct(self, matrix: NDArray[np.float64]) -> NDArray[np.float64]:
        """``-score_samples``, computed as scikit-learn does (float32 input, per-tree depths
        summed in tree order), without its per-tree dispatch and checks: those cost ~35 ms a
        call whatever the rows, which in daemon mode (a call per file per poll) was most of a
        poll's time."""
        X = np.ascontiguousarray(matrix, dtype=np.float32)
        # Most rows of a batch repeat another one (a common template's line with nothing out of
        # range: ~4 in 5 of a live batch): each distinct row is walked once. A row's score
        # depends on its bytes only, so the scores are the same.
        rows = X.view(np.dtype((np.void, X.dtype.itemsize * X.shape[1]))).ravel()
        unique_rows, inverse = np.unique(rows, return_inverse=True)
        distinct = unique_rows.view(np.float32).reshape(-1, X.shape[1])
        depths = np.zeros(distinct.shape[0])
        for tree, leaf_depths in zip(self.trees_, self.leaf_depths_, strict=True):
            depths += leaf_depths[tree.apply(distinct)]
        denominator = self.denominator_
        scores = 2 ** (
            -np.divide(depths, denominator, out=np.ones_like(depths), where=denominator != 0)
        )
        return np.asarray(scores[inverse.reshape(-1)], dtype=np.float64)

    def score(self, X: Sequence[Sequence[float]]) -> NDArray[np.float64]:
        """Anomaly scores (higher is more anomalous) for a batch of rows."""
        if not hasattr(self, "train_scores_"):
            raise NotFittedError("StreamDetector is not fitted yet; call fit first")
        matrix = np.asarray(X, dtype=np.float64)
        if matrix.size == 0:
            return np.zeros(0)
        return self._raw(matrix.reshape(len(matrix), -1))

    def tail(self, scores: NDArray[np.float64]) -> NDArray[np.float64]:
        """For each score, the (smoothed) share of training events scoring at least as high."""
        n = len(self.train_scores_)
        at_least = n - np.searchsorted(self.train_scores_, scores, side="left")
        return np.asarray((at_least + 1) / (n + 1), dtype=np.float64)

    def to_state(self) -> dict[str, Any]:
        """What ``from_state`` needs besides the training rows (stored beside it by the caller)."""
        return {"params": self.get_params(), "feature_names": list(self.feature_names_)}

    @classmethod
    def from_state(
        cls,
        params: dict[str, Any],
        feature_names: Sequence[str],
        training: Sequence[Sequence[float]],
    ) -> StreamDetector:
        allowed = {"n_estimators", "max_samples", "random_state"}
        return cls(**{k: v for k, v in params.items() if k in allowed}).fit(training, feature_names)


def _walk_arrays(
    forest: IsolationForest, n_features: int
) -> tuple[list[Any], list[NDArray[np.float64]], float]:
    """What ``StreamDetector._direct`` reads of a fitted forest: its trees (scikit-learn's Tree
    objects), each tree's leaf depths, and the path-length denominator; no trees when this
    scikit-learn's forest lacks what the walk needs."""
    if _average_path_length is None:
        return [], [], 0.0
    try:
        if forest._max_features != n_features:
            return [], [], 0.0  # trees that see a subset of the columns: not walked here
        trees = [estimator.tree_ for estimator in forest.estimators_]
        # A leaf's depth as scikit-learn adds it up (path length + the expected length of the
        # search its leaf cuts short - 1), one array per tree: one lookup per tree and call
        # instead of four array operations.
        leaf_depths = [
            lengths + average - 1.0
            for lengths, average in zip(
                forest._decision_path_lengths, forest._average_path_length_per_tree, strict=True
            )
        ]
        # The same for every call (scikit-learn recomputes it, input checks and all, each
        # time: ~0.4 ms, most of a small batch's scoring).
        denominator = float(len(trees) * _average_path_length([forest._max_samples])[0])
    except (AttributeError, TypeError, ValueError, IndexError):
        return [], [], 0.0
    return trees, leaf_depths, denominator


class NoveltyDetector:
    """How unlike anything established an event's template is: the normalised Levenshtein distance
    to the nearest established template (0 identical, 1 nothing alike).

    Cost is bounded: only rare templates are compared (the pipeline asks only for those), against
    at most ``max_candidates`` established templates, skipping candidates whose length alone rules
    them out, and results are cached per template text.
    """

    def __init__(self, max_candidates: int = 200, cache_size: int = 4096) -> None:
        self.max_candidates = max_candidates
        self.cache_size = cache_size
        self._cache: dict[tuple[str, int], tuple[float, str | None]] = {}

    def nearest(
        self,
        text: str,
        established: Sequence[str],
        generation: int = 0,
    ) -> tuple[float, str | None]:
        """(distance, nearest template); ``generation`` changes when the established set does."""
        key = (text, generation)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        best, best_text = 1.0, None
        n = len(text)
        for candidate in established[: self.max_candidates]:
            m = len(candidate)
            longest = max(n, m, 1)
            if abs(n - m) / longest >= best:  # the length difference alone is already worse
                continue
            cutoff = int(best * longest)
            d = Levenshtein.distance(text, candidate, score_cutoff=cutoff) / longest
            if d < best:
                best, best_text = d, candidate
                if best == 0.0:
                    break
        if len(self._cache) >= self.cache_size:
            self._cache.clear()
        self._cache[key] = (best, best_text)
        return best, best_text
