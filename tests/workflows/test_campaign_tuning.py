"""The tuning searches (pure): the grid search visits the whole product; the coordinate search
finds the optimum of a separable score with far fewer runs and never scores a point twice."""
from genenkf_hpc.workflows.campaign_tuning import candidate_name, search

GRIDS = [[2.0, 4.0, 6.0, 10.0, 20.0], [1.0, 1.05, 1.1, 1.2, 1.3], [0.0, 0.5, 0.9], [0.0, 0.1, 0.3]]
TARGET = (6.0, 1.1, 0.5, 0.1)


def _separable(calls):
    def score(point):
        calls.append(point)
        return sum((a - b) ** 2 for a, b in zip(point, TARGET))
    return score


def test_grid_search_scores_the_whole_product():
    calls = []
    best, value = search(GRIDS, _separable(calls), (2.0, 1.0, 0.0, 0.0), "grid", 2)
    assert best == TARGET and value == 0.0 and len(calls) == 5 * 5 * 3 * 3


def test_coordinate_search_finds_a_separable_optimum_cheaply():
    calls = []
    best, value = search(GRIDS, _separable(calls), (2.0, 1.0, 0.0, 0.0), "coordinate", 2)
    assert best == TARGET and value == 0.0
    assert len(calls) == len(set(calls))  # each point scored once
    assert len(calls) <= 2 * sum(len(g) for g in GRIDS)  # 32, against 225 for the product


def test_coordinate_search_follows_interactions_in_a_second_pass():
    """Score with an interaction: the best y depends on x; one pass from (0, 0) stops at a
    point that a second pass improves."""
    def score(p):
        x, y = p
        return (x - 2) ** 2 + 0.5 * (y - x) ** 2
    grids = [[0, 1, 2, 3], [0, 1, 2, 3]]
    one, v1 = search(grids, score, (0, 0), "coordinate", 1)
    two, v2 = search(grids, score, (0, 0), "coordinate", 3)
    assert one == (1, 1) and v1 == 1.0
    assert two == (2, 2) and v2 == 0.0


def test_candidate_names():
    assert candidate_name(["filter.radius", "filter.inflation"], (4.0, 1.05)) == \
        "radius4_inflation1.05"
