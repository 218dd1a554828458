"""The training loop (train.py) on small problems whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from unrolled.train import TrainConfig, TrainingError, fit, learning_rate


def quadratic(target: np.ndarray):
    """loss = |w - target|², one 'batch' per epoch."""

    def batch_loss(batch, rng):
        diff = params["w"] - target
        return float(diff @ diff), {"w": 2 * diff}

    params = {"w": np.zeros_like(target)}
    return params, (lambda rng: [0]), batch_loss


class Recorder:
    def __init__(self):
        self.begin, self.steps, self.epochs = None, [], []

    def on_train_begin(self, steps_per_epoch, epochs):
        self.begin = (steps_per_epoch, epochs)

    def on_batch_end(self, step, loss):
        self.steps.append(step)

    def on_epoch_end(self, result, params):
        self.epochs.append(result)


def test_fit_minimises_and_reports_through_callbacks():
    target = np.array([1.0, -2.0])
    params, batches, loss = quadratic(target)
    recorder = Recorder()
    history = fit(params, batches, loss, TrainConfig(epochs=200, lr=0.1, clip_norm=None), callbacks=[recorder])
    np.testing.assert_allclose(params["w"], target, atol=1e-3)
    assert recorder.begin == (1, 200) and recorder.steps == list(range(1, 201))
    assert [r.epoch for r in recorder.epochs] == list(range(1, 201))
    assert history.epochs[-1].train_loss < 1e-5 < history.epochs[0].train_loss


def test_early_stopping_restores_the_best_epoch():
    target = np.array([3.0])
    params, batches, loss = quadratic(target)
    seen = []

    def evaluate():  # the dev metric peaks at epoch 3, then falls
        seen.append(params["w"].copy())
        return [0.1, 0.5, 0.9, 0.8, 0.7, 0.6, 0.5][len(seen) - 1]

    history = fit(params, batches, loss, TrainConfig(epochs=7, lr=0.1, patience=2), evaluate=evaluate)
    assert history.best_epoch == 3 and history.best_metric == 0.9
    assert history.stopped_early and len(history.epochs) == 5
    np.testing.assert_array_equal(params["w"], seen[2])  # the weights after epoch 3, not the last ones


def test_lower_is_better_metrics_and_no_patience():
    params, batches, loss = quadratic(np.array([1.0]))
    values = iter([5.0, 4.0, 6.0, 3.0])
    history = fit(params, batches, loss, TrainConfig(epochs=4, patience=None), evaluate=lambda: next(values),
                  higher_is_better=False)
    assert history.best_epoch == 4 and not history.stopped_early


def test_nan_loss_stops_with_a_clear_error():
    params = {"w": np.zeros(1)}
    with pytest.raises(TrainingError, match="loss became nan at epoch 1, step 1"):
        fit(params, lambda rng: [0], lambda b, rng: (float("nan"), {"w": np.zeros(1)}), TrainConfig())


def test_gradient_clipping_bounds_each_update():
    params, batches, loss = quadratic(np.array([100.0]))
    fit(params, batches, loss, TrainConfig(epochs=1, optimizer="sgd", momentum=0.0, lr=1.0, clip_norm=0.5))
    assert params["w"][0] == pytest.approx(0.5, rel=1e-5)  # the gradient 200 was clipped to norm 0.5


def test_schedules_are_pure_functions_of_the_step():
    config = TrainConfig(lr=1.0, schedule="warmup_linear", warmup_steps=10)
    assert learning_rate(config, 0, 100) == pytest.approx(0.1)
    assert learning_rate(config, 10, 100) == pytest.approx(1.0)
    assert learning_rate(config, 100, 100) == pytest.approx(0.0)
    cosine = TrainConfig(lr=1.0, schedule="warmup_cosine", warmup_steps=0)
    assert learning_rate(cosine, 50, 100) == pytest.approx(0.5)


def test_same_seed_same_result_with_random_batches():
    def run(seed):
        rng_data = np.random.default_rng(0)
        xs, ys = rng_data.standard_normal((40, 3)), rng_data.standard_normal(40)
        params = {"w": np.zeros(3)}

        def batches(rng):
            order = rng.permutation(40)
            return [order[i : i + 8] for i in range(0, 40, 8)]

        def batch_loss(batch, rng):
            residual = xs[batch] @ params["w"] - ys[batch]
            return float(residual @ residual / len(batch)), {"w": 2 * xs[batch].T @ residual / len(batch)}

        fit(params, batches, batch_loss, TrainConfig(epochs=3, lr=0.05, seed=seed))
        return params["w"]

    assert np.array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(epochs=0), "epochs"), (dict(lr=-1.0), "lr"), (dict(optimizer="lbfgs"), "optimizer"),
        (dict(schedule="cyclic"), "schedule"), (dict(clip_norm=0.0), "clip_norm"), (dict(patience=0), "patience"),
    ],
)
def test_bad_config_names_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


def test_empty_training_set_is_an_error():
    with pytest.raises(TrainingError, match="training set is empty"):
        fit({"w": np.zeros(1)}, lambda rng: [], lambda b, rng: (0.0, {}), TrainConfig())


def test_a_callback_can_stop_training_after_a_batch():
    params, _, loss = quadratic(np.array([1.0]))

    class StopAtStep3:
        stop_training = False

        def on_batch_end(self, step, value):
            self.stop_training = step >= 3

    history = fit(params, lambda rng: [0, 1], loss, TrainConfig(epochs=10, patience=None), callbacks=[StopAtStep3()])
    assert len(history.epochs) == 2 and history.stopped_early  # steps 1-2, then step 3 ends epoch 2
