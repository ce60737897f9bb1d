import json

import numpy as np
import pytest

from spikelfp.io import load_checkpoint
from spikelfp.train import TrainConfig, Trainer, evaluate


def _fit(data, out=None, **kw):
    train, test = data
    cfg = TrainConfig(**{"hidden": [32], "epochs": 2, **kw})
    return Trainer(cfg, progress=False).fit(train, test, out, binning={"bin_us": 10000.0})


@pytest.mark.parametrize("rule", ["temporal", "spike-count"])
def test_same_seed_same_weights(small_digits, tmp_path, rule):
    _fit(small_digits, tmp_path / "a", rule=rule, seed=3)
    _fit(small_digits, tmp_path / "b", rule=rule, seed=3)
    _fit(small_digits, tmp_path / "c", rule=rule, seed=4)
    a, b, c = (load_checkpoint(tmp_path / k / "model.h5").network for k in "abc")
    for la, lb, lc in zip(a.layers, b.layers, c.layers):
        np.testing.assert_array_equal(la.weight, lb.weight)
        assert not np.array_equal(la.weight, lc.weight)


def test_resume_equals_an_uninterrupted_run(small_digits, tmp_path):
    a = _fit(small_digits, tmp_path / "c1", epochs=3)
    _fit(small_digits, tmp_path / "c2", epochs=1)
    train, test = small_digits
    b = Trainer(TrainConfig(hidden=[32], epochs=3), progress=False).fit(
        train, test, tmp_path / "c2", resume=True, binning={"bin_us": 10000.0})
    wa = load_checkpoint(tmp_path / "c1" / "model.h5").network
    wb = load_checkpoint(tmp_path / "c2" / "model.h5").network
    for la, lb in zip(wa.layers, wb.layers):
        np.testing.assert_array_equal(la.weight, lb.weight)
    assert a["test_accuracy"] == b["test_accuracy"] and b["epochs"] == 3


def test_resume_refuses_a_different_architecture(small_digits, tmp_path):
    _fit(small_digits, tmp_path / "r", epochs=1)
    train, test = small_digits
    with pytest.raises(ValueError, match="hidden"):
        Trainer(TrainConfig(hidden=[16], epochs=2), progress=False).fit(train, test, tmp_path / "r", resume=True)


def test_metrics_and_checkpoint_contents(small_digits, tmp_path):
    m = _fit(small_digits, tmp_path / "m", epochs=1, rule="spike-count")
    on_disk = json.loads((tmp_path / "m" / "metrics.json").read_text())
    for key in ("test_accuracy", "train_accuracy", "epochs", "wall_s", "samples_per_s", "config"):
        assert key in on_disk
    assert on_disk["test_accuracy"] == m["test_accuracy"]
    ck = load_checkpoint(tmp_path / "m" / "model.h5")
    assert ck.config["rule"] == "spike-count" and len(ck.history) == 1 and ck.optimizer is not None
    # the saved model reproduces the reported accuracy exactly
    assert evaluate(ck.network, small_digits[1])["accuracy"] == m["test_accuracy"]


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="unknown rule"):
        TrainConfig(rule="bptt")
    with pytest.raises(ValueError, match="unknown reward"):
        TrainConfig(reward="mse")
    with pytest.raises(ValueError, match="unknown optimizer"):
        TrainConfig(optimizer="lbfgs")
    with pytest.raises(ValueError, match="hidden"):
        TrainConfig(hidden=[0])


@pytest.mark.slow
@pytest.mark.parametrize("rule, target", [("temporal", 0.95), ("spike-count", 0.90)])
def test_default_recipe_reaches_the_target_accuracy(digits, rule, target):
    """DESIGN §5's recipe on digits-saccade (578-256-10, Adam 1e-3, batch 32, 20 epochs)."""
    train, test = digits
    m = Trainer(TrainConfig(rule=rule, epochs=20, seed=0), progress=False).fit(train, test)
    assert m["test_accuracy"] >= target, m["history"][-1]
