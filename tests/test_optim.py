import numpy as np
import numpy_reference as ref
import pytest
import torch

from spikelfp.optim import SGD, Adam, OneCycle, clip_grad_norm


def test_adam_matches_numpy_reference_and_torch():
    rng = np.random.default_rng(0)
    w0 = rng.normal(size=50)
    grads = [rng.normal(size=50) for _ in range(7)]
    w = w0.copy()
    opt = Adam(lr=1e-2)
    for g in grads:
        opt.step({"w": w}, {"w": g})
    np.testing.assert_allclose(w, ref.adam(w0, grads, 1e-2), rtol=1e-12, atol=1e-14)
    tw = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    topt = torch.optim.Adam([tw], lr=1e-2)
    for g in grads:
        tw.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(w, tw.detach().numpy(), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_matches_torch(nesterov):
    rng = np.random.default_rng(1)
    w0 = rng.normal(size=20)
    grads = [rng.normal(size=20) for _ in range(5)]
    w = w0.copy()
    opt = SGD(lr=0.02, momentum=0.9, nesterov=nesterov)
    for g in grads:
        opt.step({"w": w}, {"w": g})
    tw = torch.tensor(w0, requires_grad=True)
    topt = torch.optim.SGD([tw], lr=0.02, momentum=0.9, nesterov=nesterov)
    for g in grads:
        tw.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(w, tw.detach().numpy(), rtol=1e-14)


def test_state_dict_round_trip_continues_identically():
    rng = np.random.default_rng(2)
    grads = [rng.normal(size=8) for _ in range(6)]
    a, b = np.ones(8), np.ones(8)
    oa = Adam(lr=0.1)
    for g in grads:
        oa.step({"w": a}, {"w": g})
    ob = Adam(lr=0.1)
    for g in grads[:3]:
        ob.step({"w": b}, {"w": g})
    oc = Adam(lr=0.1)
    oc.load_state_dict(ob.state_dict())
    for g in grads[3:]:
        oc.step({"w": b}, {"w": g})
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="optimizer state is for 'adam'"):
        SGD(lr=0.1).load_state_dict(ob.state_dict())


def test_onecycle_and_clipping():
    s = OneCycle(1e-2, 100)
    assert s(0) == pytest.approx(1e-2 / 25)
    assert s(30) == pytest.approx(1e-2)
    assert s(100) == pytest.approx(1e-2 / 25 / 1e4)
    assert max(s(k) for k in range(101)) == pytest.approx(1e-2)
    g = {"a": np.array([3.0, 0.0]), "b": np.array([4.0])}
    assert clip_grad_norm(g, 1.0) == pytest.approx(5.0)
    assert np.sqrt(sum((v**2).sum() for v in g.values())) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="learning rate"):
        Adam(lr=0.0)
    for eps in (0.0, -1e-8, float("nan")):
        with pytest.raises(ValueError, match="eps must be > 0"):
            Adam(eps=eps)
    with pytest.raises(ValueError, match="betas"):
        Adam(betas=(0.9, 1.0))


def test_mismatched_gradient_is_refused():
    import pytest

    from spikelfp.optim import OPTIMIZERS

    for name in OPTIMIZERS:
        with pytest.raises(ValueError, match="has shape"):
            OPTIMIZERS[name](lr=1e-3).step({"WT": np.zeros(5)}, {"WT": np.zeros(4)})


@pytest.mark.parametrize("opt", [lambda: Adam(lr=1e-2), lambda: SGD(lr=0.1, momentum=0.9, nesterov=True)])
def test_float32_gradients_step_like_their_float64_values(opt):
    """A float32 network's feedback (float32 F_W) goes to the kernels as it is, widened per element:
    the same bits as passing the same values in float64."""
    rng = np.random.default_rng(3)
    w0 = rng.normal(size=50).astype(np.float32)
    grads = [rng.normal(size=50).astype(np.float32) for _ in range(4)]
    a, b = opt(), opt()
    wa, wb = {"w": w0.copy()}, {"w": w0.copy()}
    for g in grads:
        a.step(wa, {"w": g}, scale=-0.25)
        b.step(wb, {"w": g.astype(np.float64)}, scale=-0.25)
    np.testing.assert_array_equal(wa["w"], wb["w"])
    assert not np.array_equal(wa["w"], w0)
