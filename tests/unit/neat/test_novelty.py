"""``neat.novelty``: the behaviour-novelty score that ``novelty_weight`` blends into
selection."""

from __future__ import annotations

import numpy as np
import pytest

from ezspark_common.neat import novelty
from ezspark_common.neat.reproduction import selection_fitness


def cloud(n: int = 40, seed: int = 0) -> np.ndarray:
    """``n`` behaviours of 3 values, spread normally."""
    return np.random.default_rng(seed).normal(size=(n, 3))


def test_the_odd_one_out_is_the_most_novel() -> None:
    """A behaviour far from a cluster scores highest; one inside it scores lower."""
    points = cloud()
    points[7] = [25.0, 25.0, 25.0]
    scores = novelty.novelty(points, np.ones(len(points), dtype=np.bool_))
    assert int(np.argmax(scores)) == 7
    assert scores[7] > 2 * np.median(scores)


def test_units_do_not_matter() -> None:
    """Scaling one behaviour value (metres to millimetres) leaves the scores unchanged."""
    points = cloud()
    valid = np.ones(len(points), dtype=np.bool_)
    scaled = points * np.array([1000.0, 1.0, 1.0])
    np.testing.assert_allclose(
        novelty.novelty(scaled, valid), novelty.novelty(points, valid), rtol=1e-9
    )


def test_block_size_does_not_change_a_bit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scores are bit-identical whether distances are computed in one block or row by row."""
    points = cloud(300, seed=4)
    valid = np.ones(len(points), dtype=np.bool_)
    whole = novelty.novelty(points, valid)
    monkeypatch.setattr(novelty, "_BLOCK_VALUES", 1)
    assert novelty.novelty(points, valid).tobytes() == whole.tobytes()


def test_invalid_rows_score_zero_and_are_no_ones_neighbour() -> None:
    """A genome without behaviour scores 0 and moving it changes no one else's score."""
    points = cloud()
    valid = np.ones(len(points), dtype=np.bool_)
    valid[3] = False
    before = novelty.novelty(points, valid)
    points[3] = [1e6, -1e6, 0.0]
    after = novelty.novelty(points, valid)
    assert before[3] == after[3] == 0.0
    assert before.tobytes() == after.tobytes()


def test_few_genomes_use_every_other_as_neighbour() -> None:
    """With fewer genomes than NEIGHBOURS + 1, novelty is the mean distance to all others."""
    points = np.array([[0.0], [1.0], [3.0]])
    scores = novelty.novelty(points, np.ones(3, dtype=np.bool_))
    spread = points[:, 0].std()
    np.testing.assert_allclose(scores, np.array([2.0, 1.5, 2.5]) / spread)


def test_descriptors_average_a_genomes_games() -> None:
    """A genome's behaviour is the mean of its games' ranges; no behaviour is a zero row."""
    rows = novelty.descriptors([((0.0, 2.0), (2.0, 4.0)), ()])
    assert rows.tolist() == [[1.0, 3.0], [0.0, 0.0]]


def test_blend_spans_fitness_only_to_novelty_only() -> None:
    """Weight 0 is the plain fitness share, weight 1 the novelty share (top genome 1.0)."""
    keys = list(range(30))
    fitness = {k: float(k % 7) for k in keys}
    behaviour = {k: (tuple(cloud(30)[k].tolist()),) for k in keys}
    zero = novelty.blend(keys, fitness, behaviour, 0.0, -1.0)
    share = selection_fitness(np.array([fitness[k] for k in keys]), -1.0)
    assert [zero[k] for k in keys] == share.tolist()
    one = novelty.blend(keys, fitness, behaviour, 1.0, -1.0)
    assert max(one.values()) == 1.0
    assert min(one.values()) > 0.0


def test_blend_on_a_plateau_ranks_by_novelty() -> None:
    """Every genome at the floor (a sparse reward): half-weight novelty still orders them."""
    keys = list(range(20))
    fitness = dict.fromkeys(keys, -200.0)
    behaviour = {k: ((float(k),),) for k in keys} | {5: ((100.0,),)}
    scores = novelty.blend(keys, fitness, behaviour, 0.5, -200.0)
    assert max(scores, key=lambda k: scores[k]) == 5
    assert len(set(scores.values())) > 2
