"""Lava backend: every Lava run happens in a subprocess with a timeout, so a hang cannot stall CI,
and each checks afterwards that none of the worker processes Lava forked is still alive."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np
import pytest
from conftest import foreground_sigint, random_net
from spikelfp.backends import lava as lava_backend

from spikelfp.io import Checkpoint, save_checkpoint
from spikelfp.loihi import UnsupportedNetworkError, quantize, simulate_fixed

pytestmark = pytest.mark.lava
HERE = os.path.dirname(os.path.abspath(__file__))


def run_script(tmp_path, body: str, timeout=420) -> dict:
    script = tmp_path / "lava_job.py"
    script.write_text(f"import json, sys\nsys.path.insert(0, {HERE!r})\n" + textwrap.dedent(body))
    r = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr[-4000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    for pid in out.get("workers", []):
        assert not _alive(pid), f"Lava worker {pid} outlived its run"
    return out


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_float_lava_spikes_identical_to_spikelfp(tmp_path):
    out = run_script(tmp_path, """
        import numpy as np
        from conftest import foreground_sigint, random_net, random_input
        import spikelfp
        from spikelfp.backends import lava
        res, workers = [], []
        for seed, sizes, bias in [(0, [20, 12, 5], False), (1, [30, 16, 9, 4], True), (2, [15, 8, 3], True)]:
            rng = np.random.default_rng(seed)
            net = random_net(rng, sizes, bias=bias, beta=float(rng.uniform(0.5, 1.0)))
            x = random_input(rng, 5, 12, sizes[0], 0.3)
            ref = spikelfp.simulate(net, x, raster=True)
            run = lava.export(net, "float").run(x)
            workers += run.workers_seen
            res.append({"equal": [bool(np.array_equal(a, b)) for a, b in zip(run.rasters, ref.rasters)],
                        "spikes": [int(r.sum()) for r in ref.rasters]})
        print(json.dumps({"res": res, "workers": workers}))
    """)
    assert out["workers"], "no Lava workers were seen: the run did not happen"
    for r in out["res"]:
        assert all(r["equal"]), r
        assert all(s > 0 for s in r["spikes"]), "vacuous: a silent layer"


def test_fixed_lava_bit_exact_with_spikelfp_fixed_mode(tmp_path):
    out = run_script(tmp_path, """
        import numpy as np
        from conftest import foreground_sigint, random_net, random_input
        from spikelfp.backends import lava
        from spikelfp.loihi import quantize, simulate_fixed
        res, workers = [], []
        for seed, sizes, bias in [(3, [20, 12, 5], True), (4, [25, 10, 6, 3], False)]:
            rng = np.random.default_rng(seed)
            net = random_net(rng, sizes, bias=bias, beta=float(rng.uniform(0.3, 1.0)))
            x = random_input(rng, 6, 15, sizes[0], 0.3)
            sim = simulate_fixed(quantize(net), x, raster=True)
            run = lava.export(net, "fixed").run(x)
            workers += run.workers_seen
            res.append({"equal": [bool(np.array_equal(a, b)) for a, b in zip(run.rasters, sim.rasters)],
                        "spikes": [int(r.sum()) for r in sim.rasters]})
        print(json.dumps({"res": res, "workers": workers}))
    """)
    for r in out["res"]:
        assert all(r["equal"]), r
        assert all(s > 0 for s in r["spikes"])


def _trained_model(tmp_path, small_digits):
    from spikelfp.train import TrainConfig, Trainer

    train, test = small_digits
    Trainer(TrainConfig(hidden=[48], epochs=3, seed=0), progress=False).fit(
        train, test, str(tmp_path / "run"), binning={"bin_us": 10000.0, "n_bins": 30, "start_us": 0.0,
                                                    "spatial_factor": 2, "merge_polarity": False})
    return tmp_path / "run" / "model.h5"


def test_export_cli_on_a_trained_model(tmp_path, small_digits, data_root):
    model = _trained_model(tmp_path, small_digits)
    r = subprocess.run([sys.executable, "-m", "spikelfp", "export", str(model), "--to", "lava", "--check", "40",
                        "--json", str(tmp_path / "lava.json"), "--data-root", data_root],
                       capture_output=True, text=True, timeout=420)
    assert r.returncode == 0, r.stderr[-3000:]
    rep = json.loads((tmp_path / "lava.json").read_text())
    assert rep["samples"] == 40
    assert rep["float_spike_agreement"]["overall"] == 1.0                     # float Lava: spike-exact
    assert rep["fixed_vs_spikelfp_fixed_agreement"]["overall"] == 1.0         # bit-exact fixed mode
    assert rep["float_accuracy"] == rep["reference_accuracy"]
    for key in ("fixed_spike_agreement", "fixed_accuracy", "lava_seconds_per_step"):
        assert key in rep
    assert 0.5 < rep["fixed_spike_agreement"]["overall"] <= 1.0
    assert os.path.exists(tmp_path / "run" / "model.lava.h5")
    # the README's Lava example, on this very file
    example = os.path.join(HERE, "..", "examples", "run_in_lava.py")
    r = subprocess.run([sys.executable, example, str(tmp_path / "run" / "model.lava.h5"), "--samples", "6",
                        "--data-root", data_root], capture_output=True, text=True, timeout=420)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "agree on 100% of predictions" in r.stdout, r.stdout


def test_exported_file_loads_as_lava_processes_and_runs(tmp_path):
    """What a Lava user does with ``--to lava``'s file: lava.load -> processes, own source and sink."""
    out = run_script(tmp_path, """
        import multiprocessing
        import numpy as np
        from conftest import foreground_sigint, random_net, random_input
        import spikelfp
        from spikelfp import compat
        from spikelfp.backends import lava
        compat.patch_lava()
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.io.sink import RingBuffer as Sink
        from lava.proc.io.source import RingBuffer as Source
        rng = np.random.default_rng(7)
        net = random_net(rng, [14, 9, 4], bias=True, beta=0.85)
        lava.write_parameters(sys.argv[0] + ".lava.h5", net)
        B, T, L = 3, 10, 2
        x = random_input(rng, B, T, 14, 0.35)
        res, workers = {}, []
        for mode in ("float", "fixed"):
            procs = lava.load(sys.argv[0] + ".lava.h5", mode=mode, n_steps=T)
            steps = B * T + L
            data = np.zeros((14, steps))
            data[:, : B * T] = x.reshape(B * T, 14).T
            src = Source(data=data if mode == "float" else data.astype(np.int32))
            sink = Sink(shape=(4,), buffer=steps)
            src.s_out.connect(procs.s_in)
            procs.s_out.connect(sink.a_in)
            try:
                src.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag=procs.select_tag))
                workers += [p.pid for p in multiprocessing.active_children()]
                got = sink.data.get()
            finally:
                src.stop()
            res[mode] = np.stack([got[:, b * T + L: (b + 1) * T + L].T for b in range(B)]).astype(np.uint8)
        ref = spikelfp.simulate(net, x, raster=True).rasters[-1]
        from spikelfp.loihi import quantize, simulate_fixed
        ref_fixed = simulate_fixed(quantize(net), x, raster=True).rasters[-1]
        print(json.dumps({"float": bool(np.array_equal(res["float"], ref)),
                          "fixed": bool(np.array_equal(res["fixed"], ref_fixed)),
                          "spikes": int(ref.sum()), "workers": workers}))
    """)
    assert out["spikes"] > 0
    assert out["float"], "float Lava from the loaded file differs from spikelfp"
    assert out["fixed"], "fixed-point Lava from the loaded file differs from spikelfp's Loihi mode"


def test_lava_parameter_file_errors(tmp_path):
    (tmp_path / "x.lava.h5").write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="unreadable Lava parameter file"):
        lava_backend.read_parameters(tmp_path / "x.lava.h5")
    import h5py
    with h5py.File(tmp_path / "y.lava.h5", "w") as f:
        f.attrs["kind"] = "something-else"
    with pytest.raises(ValueError, match="not a spikelfp Lava parameter file"):
        lava_backend.read_parameters(tmp_path / "y.lava.h5")


def _start_export(model, data_root):
    """The export in its own session, so the test can always kill everything it started (with
    SIGINT's default action, as a command started from a terminal has it)."""
    return subprocess.Popen([sys.executable, "-m", "spikelfp", "export", str(model), "--to", "lava", "--check", "300",
                             "--data-root", data_root], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=foreground_sigint)


def _wait_for_workers(p, n=3, within=120.0) -> set:
    workers: set[int] = set()
    deadline = time.time() + within
    while time.time() < deadline and p.poll() is None:
        workers |= _children(p.pid)
        if len(workers) >= n:
            break
        time.sleep(0.05)
    return workers


def _kill_all(p, workers):
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(p.pid, signal.SIGKILL)
    for w in workers:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(w, signal.SIGKILL)
    with contextlib.suppress(Exception):
        p.wait(timeout=10)


def _survivors(workers, within=15.0):
    deadline = time.time() + within
    alive = [w for w in workers if _alive(w)]
    while alive and time.time() < deadline:
        time.sleep(0.2)
        alive = [w for w in workers if _alive(w)]
    return alive


@pytest.mark.parametrize("delay, how", [(0.0, "SIGTERM"), (0.3, "SIGTERM"), (0.3, "Ctrl-C")])
def test_sigterm_during_export_leaves_no_workers(tmp_path, small_digits, data_root, delay, how):
    model = _trained_model(tmp_path, small_digits)
    p = _start_export(model, data_root)
    workers: set[int] = set()
    try:
        workers = _wait_for_workers(p, n=1 if delay == 0 else 3)
        assert workers, "Lava never started its workers"
        time.sleep(delay)                               # 0: while Lava is still starting its workers
        workers |= _children(p.pid)
        if how == "Ctrl-C":                             # a terminal's Ctrl-C: SIGINT to every process of the
            os.killpg(p.pid, signal.SIGINT)             # group, Lava's workers (which inherit the handler) too
        else:
            p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)                              # must not hang
        survivors = _survivors(workers)
        assert not survivors, f"Lava workers survived {how}: {survivors}"
        assert p.returncode != 0
        assert not [d for d in os.listdir(tempfile.gettempdir()) if d.startswith("spikelfp-lava-")
                    and _owned_by(d, p.pid)]
    finally:
        _kill_all(p, workers)


def _owned_by(folder, pid) -> bool:
    return folder.startswith(f"spikelfp-lava-{pid}-")


def test_sigkill_of_the_parent_takes_the_workers_with_it(tmp_path, small_digits, data_root):
    model = _trained_model(tmp_path, small_digits)
    p = _start_export(model, data_root)
    workers: set[int] = set()
    try:
        workers = _wait_for_workers(p, n=3)
        assert workers, "Lava never started its workers"
        time.sleep(0.3)
        workers |= _children(p.pid)
        p.send_signal(signal.SIGKILL)                   # no handler, no finally: only PR_SET_PDEATHSIG helps
        p.wait(timeout=30)
        survivors = _survivors(workers)
        assert not survivors, f"Lava workers outlived their SIGKILLed parent: {survivors}"
        # its temp folder cannot be removed by the dead process: the next run removes it
        lava_backend.remove_stale_tempdirs()
        assert not [d for d in os.listdir(tempfile.gettempdir()) if _owned_by(d, p.pid)]
    finally:
        _kill_all(p, workers)


def _children(pid: int) -> set:
    out = set()
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out |= {int(c) for c in fh.read().split()}
    except FileNotFoundError:
        pass
    return out


def test_quantizer_formats():
    net = random_net(np.random.default_rng(7), [30, 10, 4], bias=True, beta=0.85)
    q = quantize(net)
    for ql, layer in zip(q.layers, net.layers):
        assert ql.weight.dtype == np.int32 and np.all(ql.weight % 2 == 0)
        assert ql.weight.min() >= -256 and ql.weight.max() <= 254 and np.abs(ql.weight).max() >= 252
        assert 0 < ql.vth < 2**17 and ql.du == 4095 and ql.dv == round(0.15 * 4096)
        assert np.abs(ql.bias_mant).max() <= 4096 and 0 <= ql.bias_exp <= 7
        np.testing.assert_allclose(ql.weight / ql.scale * 64 * 2.0**ql.weight_exp, layer.weight, atol=2 * 64 *
                                   2.0**ql.weight_exp / ql.scale)


def test_fixed_mode_tracks_float_on_random_nets():
    rng = np.random.default_rng(8)
    net = random_net(rng, [40, 20, 6], beta=0.9)
    x = (rng.random((20, 30, 40)) < 0.2).astype(np.uint8)
    import spikelfp
    a = spikelfp.simulate(net, x, raster=True)
    b = simulate_fixed(quantize(net), x, raster=True)
    assert np.mean(a.rasters[0] == b.rasters[0]) > 0.97


def test_unsupported_networks_are_refused_with_reasons(tmp_path, capsys):
    from spikelfp.cli import main

    net = random_net(np.random.default_rng(0), [4, 3], reset="subtract")
    with pytest.raises(UnsupportedNetworkError, match="reset='subtract'"):
        lava_backend.export(net)
    path = tmp_path / "sub.h5"
    save_checkpoint(path, Checkpoint(network=net))
    assert main(["export", str(path), "--to", "lava"]) == 2
    assert "only resets the membrane to zero" in capsys.readouterr().err
    (tmp_path / "junk.h5").write_text("not a model")
    assert main(["export", str(tmp_path / "junk.h5"), "--to", "lava"]) == 2
    assert "not a readable HDF5" in capsys.readouterr().err


def test_missing_lava_gives_an_install_hint(tmp_path):
    r = subprocess.run([sys.executable, "-c", textwrap.dedent("""
        import sys
        sys.modules['lava'] = None          # as if lava-nc were not installed
        from spikelfp import compat
        try:
            compat.patch_lava()
        except ImportError as e:
            print(e)
    """)], capture_output=True, text=True, timeout=120)
    assert "pip install" in r.stdout and "lava-nc==0.10.0" in r.stdout


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fixed_kernel_matches_numpy_reference(seed):
    """spikelfp's Loihi mode vs a numpy transcription of Lava's integer equations (no Lava run)."""
    import numpy_reference as ref

    from spikelfp.loihi import LoihiLayer, LoihiNetwork

    rng = np.random.default_rng(seed)
    net = random_net(rng, [30, 16, 5], bias=True, beta=float(rng.uniform(0.3, 1.0)))
    q = quantize(net)
    # plus a layer with a negative weight exponent (floor shift of the accumulated input) and a bias
    big = LoihiLayer(weight=(rng.integers(-128, 128, (4, 5)) * 2).astype(np.int32), weight_exp=-2, vth=40,
                     du=4095, dv=int(rng.integers(0, 4096)), bias_mant=rng.integers(-50, 50, 4).astype(np.int32),
                     bias_exp=3, scale=1.0)
    q = LoihiNetwork(list(q.layers) + [big])
    x = (rng.random((6, 25, 30)) < 0.3).astype(np.uint8)
    rec = simulate_fixed(q, x, raster=True, membrane=True)
    for (r, m), ra, ma in zip(ref.loihi_fixed_forward(q, x), rec.rasters, rec.membranes):
        np.testing.assert_array_equal(ra, r)
        np.testing.assert_array_equal(ma, m)
    assert sum(r.sum() for r in rec.rasters) > 0


def _assert_lava_agrees(out):
    """A per-net Lava check script's result: workers ran, float spikes equal spikelfp's, fixed point
    equal to spikelfp's Loihi mode, and every layer spiked in both (not a vacuous agreement)."""
    assert out["workers"]
    for r in out["res"]:
        assert all(r["float"]), r
        assert all(r["fixed"]), r
        assert all(s > 0 for s in r["spikes"]) and all(s > 0 for s in r["fixed_spikes"]), r


def _rnet_script_header():
    return """
        import numpy as np
        from conftest import random_input
        from test_recurrent import random_rnet
        import spikelfp
        from spikelfp.backends import lava
        from spikelfp.loihi import quantize, simulate_fixed
    """


def test_recurrent_nets_in_lava_float_spike_exact_and_fixed_bit_exact(tmp_path):
    out = run_script(tmp_path, _rnet_script_header() + """
        res, workers = [], []
        for seed, sizes, rec, bias in [(0, [20, 12, 5], (True, False), False),
                                       (1, [18, 10, 8, 4], (True, True, False), True),
                                       (2, [15, 9, 3], (False, True), True)]:
            rng = np.random.default_rng(seed)
            net = random_rnet(rng, sizes, rec, bias=bias)
            x = random_input(rng, 4, 14, sizes[0], 0.3)
            ref = spikelfp.simulate(net, x, raster=True)
            fl = lava.export(net, "float").run(x)
            sim = simulate_fixed(quantize(net), x, raster=True)
            fx = lava.export(net, "fixed").run(x)
            workers += fl.workers_seen + fx.workers_seen
            ff = spikelfp.Network([spikelfp.LIFLayer(la.weight, la.bias, la.beta, la.threshold) for la in net.layers])
            res.append({"float": [bool(np.array_equal(a, b)) for a, b in zip(fl.rasters, ref.rasters)],
                        "fixed": [bool(np.array_equal(a, b)) for a, b in zip(fx.rasters, sim.rasters)],
                        "spikes": [int(r.sum()) for r in ref.rasters],
                        "fixed_spikes": [int(r.sum()) for r in sim.rasters],
                        "v_matters": any(bool((a != b).any()) for a, b in
                                         zip(ref.rasters, spikelfp.simulate(ff, x, raster=True).rasters))})
        print(json.dumps({"res": res, "workers": workers}))
    """)
    _assert_lava_agrees(out)
    for r in out["res"]:
        assert r["v_matters"], "vacuous: the recurrent weights change no spike"


def test_recurrent_export_file_and_stream_refusal(tmp_path):
    out = run_script(tmp_path, _rnet_script_header() + """
        import multiprocessing
        from spikelfp import compat
        compat.patch_lava()
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.io.sink import RingBuffer as Sink
        from lava.proc.io.source import RingBuffer as Source
        rng = np.random.default_rng(9)
        net = random_rnet(rng, [14, 9, 4], (True, False), bias=False)   # a stream: no reset, so no bias
        path = sys.argv[0] + ".lava.h5"
        lava.write_parameters(path, net)
        try:
            lava.load(path, mode="float", n_steps=10)
            refused = ""
        except ValueError as e:
            refused = str(e)
        T, L = 10, 2
        x = random_input(rng, 1, T, 14, 0.35)
        res, workers = {}, []
        for mode in ("float", "fixed"):
            procs = lava.load(path, mode=mode)
            data = np.zeros((14, T + L))
            data[:, :T] = x[0].T
            src = Source(data=data if mode == "float" else data.astype(np.int32))
            sink = Sink(shape=(4,), buffer=T + L)
            src.s_out.connect(procs.s_in)
            procs.s_out.connect(sink.a_in)
            try:
                src.run(condition=RunSteps(num_steps=T + L), run_cfg=Loihi2SimCfg(select_tag=procs.select_tag))
                workers += [p.pid for p in multiprocessing.active_children()]
                got = sink.data.get()
            finally:
                src.stop()
            res[mode] = got[:, L: T + L].T[None].astype(np.uint8)
        ref = spikelfp.simulate(net, x, raster=True).rasters[-1]
        ref_fixed = simulate_fixed(quantize(net), x, raster=True).rasters[-1]
        print(json.dumps({"refused": refused, "float": bool(np.array_equal(res["float"], ref)),
                          "fixed": bool(np.array_equal(res["fixed"], ref_fixed)), "spikes": int(ref.sum()),
                          "workers": workers}))
    """)
    assert "recurrent layer" in out["refused"] and "n_steps=None" in out["refused"]
    assert out["spikes"] > 0 and out["float"] and out["fixed"]


@pytest.mark.parametrize("seed", [0, 1])
def test_recurrent_fixed_kernel_matches_numpy_reference(seed):
    import numpy_reference as ref
    from test_recurrent import random_rnet

    from spikelfp.loihi import LoihiLayer, LoihiNetwork

    rng = np.random.default_rng(seed)
    net = random_rnet(rng, [30, 16, 5], (True, False), bias=True)
    q = quantize(net)
    assert q.layers[0].recurrent is not None and q.layers[0].recurrent.dtype == np.int32
    # plus a recurrent layer with a negative exponent: W's and V's sums are floor-shifted apart
    big = LoihiLayer(weight=(rng.integers(-128, 128, (4, 5)) * 2).astype(np.int32), weight_exp=-2, vth=40,
                     du=4095, dv=int(rng.integers(0, 4096)), bias_mant=rng.integers(-50, 50, 4).astype(np.int32),
                     bias_exp=3, scale=1.0, recurrent=(rng.integers(-60, 100, (4, 4)) * 2 + 1).astype(np.int32))
    q = LoihiNetwork(list(q.layers) + [big])
    x = (rng.random((6, 25, 30)) < 0.3).astype(np.uint8)
    rec = simulate_fixed(q, x, raster=True, membrane=True)
    for (r, m), ra, ma in zip(ref.loihi_fixed_forward(q, x), rec.rasters, rec.membranes):
        np.testing.assert_array_equal(ra, r)
        np.testing.assert_array_equal(ma, m)
    assert all(r.sum() > 0 for r in rec.rasters)
    plain = simulate_fixed(q, x)
    np.testing.assert_array_equal(plain.synops, rec.synops)


def test_conv_nets_in_lava_float_spike_exact_and_fixed_bit_exact(tmp_path):
    """Conv -> LIF in Lava (lava.proc.conv). Lava's float Conv computes in float32 (torch), so the
    float check uses weights on a 1/64 grid, whose sums float32 holds exactly."""
    out = run_script(tmp_path, """
        import numpy as np
        from conftest import random_input
        from test_conv import random_convnet, GEOMS
        import spikelfp
        from spikelfp.backends import lava
        from spikelfp.loihi import quantize, simulate_fixed
        res, workers = [], []
        for seed, geom, bias, second in [(0, GEOMS[0], True, False), (1, GEOMS[1], False, True),
                                         (2, GEOMS[3], True, False), (3, "pool", True, False)]:
            rng = np.random.default_rng(seed)
            if geom == "pool":                            # conv, spike pooling, dense
                net = spikelfp.Network.from_arch("c4k3-p2-d6", (8, 8, 2), 4, seed=rng, gain=3.0, bias=True)
            else:
                net = random_convnet(rng, geom, bias=bias, second_conv=second)
            for la in net.layers:                         # a 1/64 grid: exact in float32 sums
                la.weight[:] = np.round(la.weight * 64) / 64
                if la.bias is not None:
                    la.bias[:] = np.round(la.bias * 64) / 64
                la.beta = 0.75
            net = spikelfp.Network([type(la)(**{k: getattr(la, k) for k in
                                    (["weight", "in_shape", "stride", "padding", "bias", "beta", "threshold", "reset"]
                                     if isinstance(la, spikelfp.ConvLayer) else
                                     ["weight", "bias", "beta", "threshold", "reset"])}) for la in net.layers])
            x = random_input(rng, 3, 12, net.n_in, 0.3)
            ref = spikelfp.simulate(net, x, raster=True)
            fl = lava.export(net, "float").run(x)
            sim = simulate_fixed(quantize(net), x, raster=True)
            fx = lava.export(net, "fixed").run(x)
            workers += fl.workers_seen + fx.workers_seen
            res.append({"float": [bool(np.array_equal(a, b)) for a, b in zip(fl.rasters, ref.rasters)],
                        "fixed": [bool(np.array_equal(a, b)) for a, b in zip(fx.rasters, sim.rasters)],
                        "spikes": [int(r.sum()) for r in ref.rasters],
                        "fixed_spikes": [int(r.sum()) for r in sim.rasters]})
        print(json.dumps({"res": res, "workers": workers}))
    """)
    _assert_lava_agrees(out)


@pytest.mark.parametrize("seed", [0, 1])
def test_conv_fixed_kernel_matches_numpy_reference(seed):
    """The fixed-point conv path vs the numpy Lava transcription on the conv's dense matrix."""
    import numpy_reference as ref
    from test_conv import GEOMS, random_convnet

    from spikelfp.loihi import LoihiLayer, LoihiNetwork

    rng = np.random.default_rng(seed)
    net = random_convnet(rng, GEOMS[seed + 1], bias=True, second_conv=True)
    q = quantize(net)
    assert q.layers[0].conv is not None and q.layers[0].weight_exp == 0
    dense = []
    for la, fl in zip(q.layers, net.layers):
        if la.conv is None:
            dense.append(la)
            continue
        shadow = type(fl)(la.weight.astype(np.float64), *la.conv)
        M, _ = ref.conv_dense_matrix(shadow)
        dense.append(LoihiLayer(M.astype(np.int32), 0, la.vth, la.du, la.dv,
                                np.tile(la.bias_mant, la.n_out // la.bias_mant.size), la.bias_exp, la.scale))
    x = (rng.random((4, 20, net.n_in)) < 0.3).astype(np.uint8)
    rec = simulate_fixed(q, x, raster=True, membrane=True)
    for (r, m), ra, ma in zip(ref.loihi_fixed_forward(LoihiNetwork(dense), x), rec.rasters, rec.membranes):
        np.testing.assert_array_equal(ra, r)
        np.testing.assert_array_equal(ma, m)
    assert all(r.sum() > 0 for r in rec.rasters)


def test_exported_conv_file_loads_as_lava_processes_and_runs(tmp_path):
    out = run_script(tmp_path, """
        import multiprocessing
        import numpy as np
        from conftest import random_input
        from test_conv import random_convnet, GEOMS
        import spikelfp
        from spikelfp import compat
        from spikelfp.backends import lava
        from spikelfp.loihi import quantize, simulate_fixed
        compat.patch_lava()
        from lava.magma.core.run_conditions import RunSteps
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.io.sink import RingBuffer as Sink
        from lava.proc.io.source import RingBuffer as Source
        rng = np.random.default_rng(5)
        net = random_convnet(rng, GEOMS[1], bias=False)
        path = sys.argv[0] + ".lava.h5"
        lava.write_parameters(path, net)
        B, T, L = 2, 10, 2
        x = random_input(rng, B, T, net.n_in, 0.35)
        res, workers = {}, []
        for mode in ("fixed",):        # float: Lava's Conv sums in float32 (see the spike-exact test's grid)
            procs = lava.load(path, mode=mode, n_steps=T)
            data = np.zeros((net.n_in, B * T + L), np.int32)
            data[:, : B * T] = x.reshape(B * T, -1).T
            src = Source(data=data)
            sink = Sink(shape=(4,), buffer=B * T + L)
            procs.connect_source(src.s_out)
            procs.s_out.connect(sink.a_in)
            try:
                src.run(condition=RunSteps(num_steps=B * T + L), run_cfg=Loihi2SimCfg(select_tag=procs.select_tag))
                workers += [p.pid for p in multiprocessing.active_children()]
                got = sink.data.get()
            finally:
                src.stop()
            res[mode] = np.stack([got[:, b * T + L: (b + 1) * T + L].T for b in range(B)]).astype(np.uint8)
        ref = simulate_fixed(quantize(net), x, raster=True).rasters[-1]
        print(json.dumps({"fixed": bool(np.array_equal(res["fixed"], ref)), "spikes": int(ref.sum()),
                          "workers": workers}))
    """)
    assert out["spikes"] > 0 and out["fixed"]
