import numpy as np
import numpy_reference as ref
import pytest
import torch

from spikelfp.optim import SGD, Adam, OneCycle, clip_grad_norm, make_schedule


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


def test_cosine_schedule_decays_from_lr_without_warm_up():
    s = make_schedule("cosine", 2e-3, 200)
    lrs = [s(k) for k in range(201)]
    assert lrs[0] == pytest.approx(2e-3)
    assert lrs[100] == pytest.approx((2e-3 + 2e-7) / 2)
    assert lrs[200] == pytest.approx(2e-7)
    assert all(a > b for a, b in zip(lrs, lrs[1:]))
    assert make_schedule("constant", 2e-3, 200)(150) == 2e-3
    assert make_schedule("onecycle", 2e-3, 200)(0) == OneCycle(2e-3, 200)(0)
    with pytest.raises(ValueError, match="unknown schedule 'step'; choose one of constant, onecycle, cosine"):
        make_schedule("step", 1e-3, 10)


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


def _neuron_adam_reference(w0, grads, blocks, lr, b1=0.9, b2=0.999, eps=1e-8, scale=1.0):
    """Slow numpy NeuronAdam: per (start, rows, cols) block, one second moment per column."""
    w = w0.astype(np.float64).copy()
    m = np.zeros_like(w)
    v = {k: np.zeros(c) for k, (_, _, c) in enumerate(blocks)}
    for step, g in enumerate(grads, 1):
        g = scale * g.astype(np.float64)
        for k, (a, r, c) in enumerate(blocks):
            sl = slice(a, a + r * c)
            G = g[sl].reshape(r, c)
            v[k] = b2 * v[k] + (1 - b2) * (G ** 2).mean(axis=0)
            mm = b1 * m[sl].reshape(r, c) + (1 - b1) * G
            m[sl] = mm.ravel()
            upd = (lr / (1 - b1 ** step)) * mm / (np.sqrt(v[k]) / np.sqrt(1 - b2 ** step) + eps)
            w[sl] = (w[sl].reshape(r, c) - upd).ravel()
    return w


def test_neuron_adam_matches_numpy_reference_and_leaves_other_elements_alone():
    from spikelfp.optim import NeuronAdam

    rng = np.random.default_rng(4)
    blocks = [(0, 6, 4), (24, 3, 5), (40, 4, 4)]      # elements 39 and 56..59 belong to no block
    seg = np.array([(a, r, c, v) for (a, r, c), v in zip(blocks, [0, 4, 9])], dtype=np.int64)
    w0 = rng.normal(size=60)
    grads = [rng.normal(size=60) * rng.uniform(0.1, 3.0) for _ in range(6)]
    w = w0.copy()
    opt = NeuronAdam(lr=3e-3, segments={"w": seg})
    for g in grads:
        opt.step({"w": w}, {"w": g}, scale=-0.5)
    want = _neuron_adam_reference(w0, grads, blocks, 3e-3, scale=-0.5)
    np.testing.assert_allclose(w, want, rtol=1e-12, atol=1e-15)
    assert w[39] == w0[39] and np.array_equal(w[56:], w0[56:])
    assert opt.buffers["w.v"].shape == (13,)
    # the |W| factor survives: a column's feedback scaled by |w| moves the small weights less
    w = np.array([1.0, 0.01, 0.5, 0.05])                 # one block (4 rows, 1 neuron)
    seg1 = np.array([(0, 4, 1, 0)], np.int64)
    g = np.abs(w) * 1.0
    before = w.copy()
    NeuronAdam(lr=1e-2, segments={"w": seg1}).step({"w": w}, {"w": g})
    step = before - w
    np.testing.assert_allclose(step / step[0], np.abs(before) / 1.0, rtol=1e-6)
    ada = before.copy()
    Adam(lr=1e-2).step({"w": ada}, {"w": g})
    np.testing.assert_allclose(before - ada, 1e-2, rtol=1e-5)   # plain Adam: every weight the same step


def test_neuron_adam_state_round_trip_and_packed_segments():
    from spikelfp import Network
    from spikelfp.optim import NeuronAdam
    from spikelfp.packed import neuron_segments, pack

    net = Network.from_arch("c2k3-p2-r5", (6, 6, 2), 3, seed=0)
    p = pack(net)
    seg = neuron_segments(p)
    # conv kernel (3*3*2 rows, 2 channels), recurrent W.T (8, 5) and V.T (5, 5), output (5, 3); no pooling
    assert [tuple(r[1:3]) for r in seg] == [(18, 2), (int(p.sizes[2]), 5), (5, 5), (5, 3)]
    assert seg[:, 3].tolist() == [0, 2, 7, 12]
    assert np.all(seg[:, 0] + seg[:, 1] * seg[:, 2] <= p.w_off[-1])
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=p.WT.size) for _ in range(4)]
    a, b = {"WT": p.WT.astype(np.float64)}, {"WT": p.WT.astype(np.float64)}
    o1 = NeuronAdam(lr=1e-2, segments={"WT": seg})
    for g in grads[:2]:
        o1.step(a, {"WT": g})
    o2 = NeuronAdam(lr=1e-2, segments={"WT": seg})
    o2.load_state_dict(o1.state_dict(), {"WT": b["WT"]})
    b["WT"][:] = a["WT"]
    for g in grads[2:]:
        o1.step(a, {"WT": g})
        o2.step(b, {"WT": g})
    assert np.array_equal(a["WT"], b["WT"])
    with pytest.raises(ValueError, match="shape"):
        NeuronAdam(segments={"WT": seg[:2]}).load_state_dict(o1.state_dict(), {"WT": b["WT"]})


def test_two_phase_is_neuron_adam_then_a_fresh_adam_and_resumes_in_either_phase():
    """TwoPhase: NeuronAdam (numpy reference) for `switch` steps, then Adam from zero moments with
    its bias correction counted from the switch and its rate decaying by a cosine to the run's
    end; a state round trip in either phase continues with the same bits."""
    from spikelfp.optim import Cosine, TwoPhase

    rng = np.random.default_rng(7)
    blocks = [(0, 6, 4), (24, 3, 5)]
    seg = np.array([(a, r, c, v) for (a, r, c), v in zip(blocks, [0, 4])], dtype=np.int64)
    w0 = rng.normal(size=40)
    grads = [rng.normal(size=40) * rng.uniform(0.1, 3.0) for _ in range(7)]
    w = w0.copy()
    opt = TwoPhase(lr=3e-3, segments={"w": seg}, switch=3, total=7)
    for g in grads:
        opt.step({"w": w}, {"w": g}, scale=-0.5)
    want = _neuron_adam_reference(w0, grads[:3], blocks, 3e-3, scale=-0.5)
    assert want[39] == w0[39]                            # in no block: still in phase 1
    ref = {"w": want}
    a2 = Adam(lr=3e-3)                                   # fresh moments, step count from the switch
    for k, g in enumerate(grads[3:]):
        a2.step(ref, {"w": g}, lr=3e-3 * Cosine(1.0, 4)(k), scale=-0.5)
    np.testing.assert_array_equal(w, ref["w"])
    assert sorted(opt.buffers) == ["w.am", "w.av"]
    for cut in (2, 5):                                   # interrupted in phase 1, in phase 2
        wa, wb = w0.copy(), w0.copy()
        oa = TwoPhase(lr=3e-3, segments={"w": seg}, switch=3, total=7)
        for g in grads[:cut]:
            oa.step({"w": wa}, {"w": g})
        ob = TwoPhase(lr=3e-3, segments={"w": seg}, switch=99, total=7)   # the saved switch wins
        ob.load_state_dict(oa.state_dict(), {"w": wb})
        assert ob.switch == 3
        wb[:] = wa
        for g in grads[cut:]:
            oa.step({"w": wa}, {"w": g})
            ob.step({"w": wb}, {"w": g})
        assert np.array_equal(wa, wb)
    w1, w2 = w0.copy(), w0.copy()                        # without a total: no decay in phase 2
    o1, o2 = TwoPhase(lr=3e-3, segments={"w": seg}, switch=0), Adam(lr=3e-3)
    for g in grads:
        o1.step({"w": w1}, {"w": g})
        o2.step({"w": w2}, {"w": g})
    np.testing.assert_array_equal(w1, w2)
    with pytest.raises(ValueError, match="switch must be >= 0"):
        TwoPhase(switch=-1)
