"""The learning loop: events, determinism, control, early stopping and divergence."""

import threading

import numpy as np
import pytest

from nnsim.data.dataset import Dataset
from nnsim.engine.checkpoint import load_checkpoint
from nnsim.engine.config import TrainConfig
from nnsim.engine.trainer import Trainer
from nnsim.errors import NnsimError, SettingError


def tiny_dataset(n=240, seed=0):
    """Two classes a small network separates quickly: bright top half vs bright bottom half."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.random((n, 1, 8, 8)).astype(np.float32) * 0.3
    x[y == 0, :, :4] += 0.6
    x[y == 1, :, 4:] += 0.6
    return Dataset("tiny", x[:200], y[:200], x[200:], y[200:], ["top", "bottom"])


def config(**overrides):
    base = dict(model="mlp", epochs=3, batch_size=16, backend="reference", sizes={"hidden": [8]})
    return TrainConfig(**{**base, **overrides})


def events_of(trainer):
    return list(trainer.run())


def test_event_sequence_and_learning():
    events = events_of(Trainer(config(), tiny_dataset()))
    kinds = [e.event for e in events]
    assert kinds.count("epoch") == 3 and kinds.count("validation") == 3
    assert kinds[-1] == "done"
    steps = [e for e in events if e.event == "step"]
    assert len(steps) == 3 * 12 and steps[-1].step == 36  # 180 training images / 16 per batch
    done = events[-1]
    assert done.steps == 36 and done.reason == "finished"
    assert done.test_accuracy >= 0.9  # it learned the task
    assert set(done.to_dict()) >= {
        "event",
        "train_loss",
        "val_accuracy",
        "test_accuracy",
        "steps",
        "samples_per_s",
        "checkpoint",
    }


def test_same_seed_same_numbers():
    a = [e.to_dict() for e in events_of(Trainer(config(seed=3), tiny_dataset())) if e.event == "step"]
    b = [e.to_dict() for e in events_of(Trainer(config(seed=3), tiny_dataset())) if e.event == "step"]
    c = [e.to_dict() for e in events_of(Trainer(config(seed=4), tiny_dataset())) if e.event == "step"]
    assert [e["loss"] for e in a] == [e["loss"] for e in b]
    assert [e["loss"] for e in a] != [e["loss"] for e in c]


def test_max_steps_stops_then_evaluates():
    events = events_of(Trainer(config(max_steps=5), tiny_dataset()))
    done = events[-1]
    assert done.steps == 5 and done.reason == "max_steps" and done.test_accuracy is not None
    assert [e.event for e in events].count("validation") == 1


def test_stop_from_another_thread_between_steps():
    trainer = Trainer(config(epochs=50), tiny_dataset())
    seen = []
    for event in trainer.run():
        seen.append(event)
        if event.event == "step" and event.step == 4:
            threading.Thread(target=trainer.stop).start()
            threading.Event().wait(0.05)
    assert seen[-1].event == "done" and seen[-1].reason == "stopped"
    assert seen[-1].steps in (4, 5)


def test_pause_blocks_until_resumed():
    trainer = Trainer(config(epochs=1), tiny_dataset())
    events = trainer.run()
    next(events)
    trainer.pause()
    assert trainer.paused
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("event", next(events)))
    worker.start()
    worker.join(0.2)
    assert worker.is_alive()  # waiting while paused
    trainer.resume()
    worker.join(2)
    assert result["event"].event == "step" and result["event"].step == 2


def test_early_stopping_keeps_the_best_weights():
    trainer = Trainer(config(epochs=30, patience=2, lr=0.05), tiny_dataset())
    events = events_of(trainer)
    stops = [e for e in events if e.event == "early_stop"]
    assert stops, "30 epochs on a task this easy should stop early"
    validations = [e for e in events if e.event == "validation"]
    best = min(v.val_loss for v in validations)
    assert stops[0].best_val_loss == best
    assert stops[0].epoch == stops[0].best_epoch + 2
    assert trainer.evaluate(trainer.x_val, trainer.y_val)[0] == pytest.approx(best)


def test_divergence_stops_with_advice_and_keeps_the_last_good_weights(tmp_path):
    path = tmp_path / "last-good.npz"
    trainer = Trainer(config(lr=1e6, optimizer="sgd", momentum=0.0, epochs=5, checkpoint=str(path)), tiny_dataset())
    events = events_of(trainer)
    diverged = [e for e in events if e.event == "diverged"]
    assert diverged and "smaller learning rate" in diverged[0].message
    assert events[-1].reason == "diverged"
    model, _ = load_checkpoint(path)  # loadable: no NaN was written
    assert all(np.isfinite(v).all() for v in model.state_dict().values())


def test_checkpoint_every_epoch_and_at_the_end(tmp_path):
    path = tmp_path / "ck.npz"
    events = events_of(Trainer(config(checkpoint=str(path)), tiny_dataset()))
    saves = [e for e in events if e.event == "checkpoint"]
    assert [s.epoch for s in saves] == [1, 2, 3]
    model, meta = load_checkpoint(path)
    assert meta["class_names"] == ["top", "bottom"] and meta["steps"] == 36
    assert meta["test_accuracy"] == events[-1].test_accuracy


def test_focal_loss_with_per_class_alpha_trains():
    from nnsim.engine.losses import cross_entropy, focal_loss

    trainer = Trainer(config(loss="focal", alpha=[0.25, 0.75], gamma=2.0), tiny_dataset())
    x, y = trainer.x_train[:16], trainer.y_train[:16]
    logits = np.asarray(trainer.forward(x), dtype=np.float64)
    loss, _, _ = trainer.loss(trainer.forward(x), y)
    assert loss == pytest.approx(focal_loss(logits, y, alpha=[0.25, 0.75], gamma=2.0)[0], rel=1e-5)
    for other in (focal_loss(logits, y, alpha=1.0, gamma=2.0)[0], cross_entropy(logits, y)[0]):
        assert abs(loss - other) > 1e-3  # α and γ both change the number
    done = events_of(trainer)[-1]
    assert done.test_accuracy >= 0.9


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"lr": 0.0}, "learning rate"),
        ({"lr": -1.0}, "learning rate"),
        ({"batch_size": 0}, "batch size"),
        ({"gamma": -0.5}, "gamma"),
        ({"model": "rnn"}, "unknown model"),
        ({"val_fraction": 1.5}, "validation fraction"),
        ({"loss": "focal", "alpha": [1.0, 2.0, 3.0]}, "3 weights but tiny has 2 classes"),
    ],
)
def test_bad_settings_are_one_clear_error(overrides, message):
    with pytest.raises(NnsimError, match=message):
        Trainer(config(**overrides), tiny_dataset())


def test_the_four_phases_one_by_one_equal_a_training_step():
    """forward, loss, backward, update, each run on its own, give train_step's loss and weights."""
    whole, phased = (Trainer(config(optimizer="sgd"), tiny_dataset()) for _ in range(2))
    x, y = whole.x_train[:16], whole.y_train[:16]
    for _ in range(3):
        loss, correct = whole.train_step(x, y)
        logits = phased.forward(x)
        assert logits.shape == (16, 2)
        loss_p, dlogits, correct_p = phased.loss(logits, y)
        assert dlogits.shape == (16, 2)
        before = {name: value.copy() for name, value in phased.model.state_dict().items()}
        grads = phased.backward(dlogits)
        assert set(grads) == set(before) and all(np.any(g != 0) for g in grads.values())
        assert phased.model.state_dict()["layers.2.weight"] == pytest.approx(before["layers.2.weight"])
        phased.update()
        after = phased.model.state_dict()
        lr = phased.config.lr  # plain SGD with momentum: the first update is exactly −η·∇
        if phased.steps == 1:
            np.testing.assert_allclose(
                after["layers.2.bias"], before["layers.2.bias"] - lr * grads["layers.2.bias"], 1e-6
            )
        assert (loss_p, correct_p) == (loss, correct)
    assert phased.steps == whole.steps == 3
    for name, value in whole.model.state_dict().items():
        np.testing.assert_array_equal(phased.model.state_dict()[name], value)


def test_events_describe_themselves():
    events = events_of(Trainer(config(patience=1, epochs=2), tiny_dataset()))
    lines = {e.event: e.describe() for e in events}
    assert lines["epoch"].startswith("epoch 2/2: train loss ")
    assert lines["validation"].startswith("validation: loss ")
    assert lines["done"].startswith("test accuracy ")
    assert lines["step"].startswith("step 24 (epoch 2, batch 12/12): loss ")


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_resume_equals_an_uninterrupted_run(tmp_path, optimizer):
    """N steps, save, resume for M more: the same losses and weights as N + M steps straight."""
    n, m = 17, 14  # 12 batches an epoch: the save falls mid-epoch 2, the resume crosses into epoch 3
    straight = Trainer(config(optimizer=optimizer, max_steps=n + m), tiny_dataset())
    straight_steps = [e.loss for e in events_of(straight) if e.event == "step"]
    checkpoint = tmp_path / "half.npz"
    first = Trainer(config(optimizer=optimizer, max_steps=n, checkpoint=str(checkpoint)), tiny_dataset())
    first_steps = [e.loss for e in events_of(first) if e.event == "step"]
    resumed = Trainer(config(optimizer=optimizer, max_steps=n + m, resume=str(checkpoint)), tiny_dataset())
    assert resumed.steps == n
    resumed_events = events_of(resumed)
    resumed_steps = [e for e in resumed_events if e.event == "step"]
    assert [e.step for e in resumed_steps] == list(range(n + 1, n + m + 1))
    assert first_steps + [e.loss for e in resumed_steps] == pytest.approx(straight_steps, rel=1e-6)
    for name, value in straight.model.state_dict().items():
        np.testing.assert_allclose(resumed.model.state_dict()[name], value, rtol=1e-6, atol=1e-7)
    assert resumed_events[-1].steps == n + m


def test_a_checkpoint_carries_optimizer_state_and_position(tmp_path):
    from nnsim.engine.checkpoint import read_checkpoint, read_extra

    path = tmp_path / "c.npz"
    events_of(Trainer(config(optimizer="adam", max_steps=5, checkpoint=str(path)), tiny_dataset()))
    header, _ = read_checkpoint(path)
    meta = header["meta"]
    assert meta["optimizer"] == {"name": "adam", "steps": 5}
    assert (meta["position"]["epoch"], meta["position"]["batch"]) == (1, 5)
    extra = read_extra(path)
    assert {key.split("/")[1] for key in extra} == {"m", "v"} and len(extra) == 2 * 4


def test_resuming_with_another_optimizer_says_so(tmp_path):
    path = tmp_path / "c.npz"
    events_of(Trainer(config(optimizer="adam", max_steps=3, checkpoint=str(path)), tiny_dataset()))
    resumed = Trainer(config(optimizer="sgd", max_steps=5, resume=str(path)), tiny_dataset())
    assert resumed.optimizer.steps == 0 and "starts with fresh state" in resumed.warnings[0]


def test_patience_turned_on_mid_run_stops_early_without_a_crash():
    """The lab's f (the doctor's fix for overfitting) turns patience on after the best epoch has
    passed; early stopping then counts from the next validation, whose weights it keeps."""
    trainer = Trainer(config(epochs=12, lr=0.5, optimizer="sgd"), tiny_dataset())
    events = trainer.run()
    for event in events:
        if event.event == "validation" and event.epoch == 2:
            trainer.set_patience(1)
            break
    rest = list(events)
    assert rest[-1].event == "done" and rest[-1].reason in ("early_stop", "finished")


def test_a_new_learning_rate_mid_run_takes_effect_at_the_next_step_and_a_bad_one_changes_nothing():
    trainer = Trainer(config(optimizer="sgd", momentum=0.0, lr=0.1), tiny_dataset())
    events = trainer.run()
    next(e for e in events if e.event == "step")
    trainer.set_lr(0.025)
    assert trainer.optimizer.lr == 0.025 and trainer.config.lr == 0.025
    before = trainer.model.state_dict()["layers.2.bias"].copy()
    next(events)  # one step of plain SGD: θ ← θ − η ∇θ L, with the new η
    moved = trainer.model.state_dict()["layers.2.bias"] - before
    assert moved == pytest.approx(-0.025 * dict(trainer.model.named_parameters())["layers.2.bias"].grad, rel=1e-4)
    for bad in (0.0, -1.0, float("nan")):
        with pytest.raises(SettingError) as refused:
            trainer.set_lr(bad)
        assert refused.value.name == "lr" and "--" not in str(refused.value)
    assert trainer.optimizer.lr == 0.025 and trainer.config.lr == 0.025


def test_change_mid_run_takes_only_live_settings_and_checks_them_all_before_any():
    """The lab's one door for changes mid-run: a setting whose metadata is not live is refused, and
    one value refused (focal α with a weight too few for the classes) leaves every other unchanged."""
    trainer = Trainer(config(loss="focal", lr=0.1), tiny_dataset())
    with pytest.raises(SettingError) as refused:
        trainer.change(batch_size=8)
    assert refused.value.name == "batch_size" and trainer.config.batch_size == 16
    with pytest.raises(SettingError) as refused:
        trainer.change(lr=0.01, alpha=[1.0, 2.0, 3.0])
    assert refused.value.name == "alpha" and "2 classes" in str(refused.value)
    assert trainer.optimizer.lr == 0.1 and trainer.config.alpha == 1.0
    trainer.change(lr=0.01, gamma=1.0, alpha=[0.25, 0.75], patience=2)
    assert trainer.optimizer.lr == 0.01 and trainer.config.lr == 0.01 and trainer.config.gamma == 1.0
    assert trainer.config.alpha == [0.25, 0.75] and trainer.config.patience == 2


def test_patience_mid_run_is_checked_and_can_be_turned_off():
    trainer = Trainer(config(), tiny_dataset())
    with pytest.raises(SettingError) as refused:
        trainer.set_patience(0)
    assert refused.value.name == "patience" and trainer.config.patience is None
    trainer.set_patience(2)
    assert trainer.config.patience == 2
    trainer.set_patience(None)
    assert trainer.config.patience is None


def test_resuming_with_patience_a_run_saved_without_it_stops_early_without_a_crash(tmp_path):
    """A checkpoint from a run without patience has a best loss but no best weights; resumed with
    patience, the count starts afresh (it once restored weights that were never kept: a crash)."""
    path = tmp_path / "c.npz"
    sgd = dict(optimizer="sgd", momentum=0.0)
    events_of(Trainer(config(epochs=1, lr=0.5, checkpoint=str(path), **sgd), tiny_dataset()))
    # a learning rate too small to move a float32 weight: every validation loss is the same
    resumed = Trainer(config(epochs=4, lr=1e-12, patience=1, resume=str(path), **sgd), tiny_dataset())
    events = events_of(resumed)
    assert events[-1].event == "done" and events[-1].reason == "early_stop"
    assert [e.improved for e in events if e.event == "validation"] == [True, False]
