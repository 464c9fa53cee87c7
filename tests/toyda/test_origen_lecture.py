"""The lecture notebook's ORIGEN on Lorenz-63 (toyda.origen_lecture)."""

import numpy as np
import pytest

from toyda import origen_lecture as ol


@pytest.fixture(scope="module")
def truth():
    return ol.truth()


def test_truth_is_the_notebooks_trajectory(truth):
    t, x = truth
    assert x.shape == (201, 3) and t[-1] == pytest.approx(20.0)
    np.testing.assert_allclose(x[0], [0.0, 1.0, 20.0])
    assert np.all(np.abs(x) < 60)


def test_b0_is_the_gaussian_correlation_matrix():
    B = ol.b0()
    assert B[0, 0] == 4.0 and B[0, 1] == pytest.approx(4 * np.exp(-0.5 / 0.64))
    assert np.all(np.linalg.eigvalsh(B) > 0)


def test_iteration_20_rmse_regression_and_lecture_range(truth):
    _, x = truth
    rec = ol.reconstruct(x, np.random.default_rng(0))
    assert rec.rmse.shape == (20,) and len(rec.subsets) == 20
    assert rec.rmse[-1] == pytest.approx(0.789, abs=2e-3)             # this implementation, seed 0
    finals = [ol.reconstruct(x, np.random.default_rng(s)).rmse[-1] for s in range(5)]
    assert 0.5 < np.mean(finals) < 0.8                                 # the notebook: about 0.66
    assert rec.rmse[-1] < 0.25 * rec.rmse[0]
    # Joseph-form P^a stays symmetric positive definite and shrinks below B0
    assert np.allclose(rec.B, rec.B.transpose(0, 2, 1))
    assert np.all(np.linalg.eigvalsh(rec.B) > 0) and np.all(np.trace(rec.B, axis1=1, axis2=2) < 12)


def test_emulator_learns_the_reconstruction(truth):
    _, x = truth
    rec = ol.reconstruct(x, np.random.default_rng(0))
    predict, losses = ol.train_emulator(rec.x_a[-1], epochs=1500, ft_epochs=100)
    assert losses[1499] < 0.05 * losses[0]
    starts, fc = ol.forecasts(predict, x)
    assert fc.shape == (len(starts), 21, 3) and starts[1] == 20
    one_step = np.sqrt(np.mean((fc[:, 1] - x[starts + 1]) ** 2))
    persistence = np.sqrt(np.mean((x[starts] - x[starts + 1]) ** 2))
    assert one_step < persistence
