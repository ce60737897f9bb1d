"""Beyond one process on Ray: sweeps (``spikelfp sweep``) and data-parallel LFP training
(``spikelfp train --workers N``); docs/distributed.md.

**Data-parallel training.** LFP's feedback is a sum over samples. Each batch is split into a pinned
number of chunks (``TrainConfig.chunks``); each chunk's feedback depends on its own samples only
(``Rule.parts``), so a worker can compute any chunk with the same bits. Ray actors each take a
contiguous range of chunks, the driver concatenates the chunks in order and sums them in that
order (``Rule.reduce``) and takes one optimizer step: the weights are ``np.array_equal`` to a
single-process run with the same ``chunks``, whatever the number of workers. Weights go to the
workers through Ray's object store once per step; the training set once per run (one copy per node).
Actors are restarted when they die and the interrupted task is retried on the new actor: the step
result is unchanged.

A sweep is a grid (every combination of ``--grid key=v1,v2`` values) over :class:`TrainConfig`
fields, run as Ray Tune trials: each trial is one ordinary training run (the same
:class:`~spikelfp.train.Trainer`, checkpoints and ``metrics.json`` in its own folder) that
reports every epoch to Tune. Local by default (``ray.init()`` on this machine, one CPU per trial);
``address`` joins a running Ray cluster (``ray start --head`` / ``ray start --address ...``), whose
nodes must see the same dataset cache (``SPIKELFP_DATA`` on a shared filesystem) or build it.

A trial that raises is reported (its error in the results) and the others go on. ``--resume`` on
the same ``--out`` continues the experiment: finished trials are kept, not re-run.

**Trust boundary.** Resuming makes Ray Tune unpickle its state files (``tuner.pkl``,
``trainable.pkl``, ...): a crafted pickle there runs code. spikelfp therefore resumes only a folder
whose every state file matches the manifest it wrote (``spikelfp-sweep.json``: size and SHA-256 of
each file, signed with an HMAC whose key lives in the user's own config folder, 0600). A folder
someone else made, downloaded, or edited since is refused; a folder is locked while a sweep runs.

Example
-------
>>> from spikelfp.distributed import parse_grid
>>> parse_grid(["rule=temporal,spike-count", "seed=0,1"])
{'rule': ['temporal', 'spike-count'], 'seed': [0, 1]}
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import itertools
import json
import os
import re

import numpy as np

from .io import write_json
from .train import TrainConfig

EXPERIMENT = "sweep"
METRIC = "test_accuracy"
MANIFEST = "spikelfp-sweep.json"


class SweepStateError(ValueError):
    """A sweep folder that spikelfp will not resume (not its own, or changed since)."""


def _user_key() -> bytes:
    """This user's secret for signing sweep manifests (created on first use, mode 0600)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    path = os.path.join(base, "spikelfp", "sweep-key")
    if not os.path.exists(path):
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(os.urandom(32))
        except FileExistsError:
            pass
    with open(path, "rb") as fh:
        key = fh.read()
    if len(key) < 32:
        raise SweepStateError(f"{path}: the sweep signing key is damaged; remove it (sweeps made before "
                              "cannot be resumed then)")
    return key


def _state_files(exp: str) -> dict:
    """Every file under the experiment folder: {relative path: (size, sha256)}."""
    files = {}
    for dp, dirs, names in os.walk(exp):
        dirs.sort()
        for n in sorted(names):
            full = os.path.join(dp, n)
            if os.path.islink(full):
                files[os.path.relpath(full, exp)] = ("link", os.readlink(full))
                continue
            h = hashlib.sha256()
            with open(full, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            files[os.path.relpath(full, exp)] = (os.path.getsize(full), h.hexdigest())
    return files


def write_manifest(out: str, settings: dict) -> None:
    """Record (and sign) the state files of ``out``'s experiment as spikelfp left them, and the
    sweep's settings (a resume must ask for the same sweep)."""
    from .io import write_json as _write

    files = _state_files(os.path.join(out, EXPERIMENT))
    body = json.dumps({"files": files, "settings": settings}, sort_keys=True)
    _write(os.path.join(out, MANIFEST), {"files": files, "settings": settings,
                                         "hmac": hmac.new(_user_key(), body.encode(), "sha256").hexdigest()})


def check_manifest(out: str, settings: dict) -> None:
    """Refuse to resume ``out`` unless its state files are exactly those spikelfp signed and the
    settings are the sweep's own (each changed one named)."""
    path = os.path.join(out, MANIFEST)
    if not os.path.exists(path):
        raise SweepStateError(f"{out}: no {MANIFEST} (not a folder spikelfp made, or it was killed before "
                              "recording its state): not resuming it, since Ray Tune would unpickle its files; "
                              "choose another --out")
    try:
        with open(path) as fh:
            m = json.load(fh)
        files, mac, saved = m["files"], m["hmac"], m["settings"]
    except (OSError, ValueError, KeyError, TypeError):
        raise SweepStateError(f"{path}: unreadable manifest: not resuming") from None
    body = json.dumps({"files": files, "settings": saved}, sort_keys=True)
    if not hmac.compare_digest(hmac.new(_user_key(), body.encode(), "sha256").hexdigest(), str(mac)):
        raise SweepStateError(f"{path}: the manifest was not signed by you (a folder someone else made, or "
                              "edited): not resuming it, since Ray Tune would unpickle its files")
    now = json.loads(json.dumps(_state_files(os.path.join(out, EXPERIMENT))))
    if now != files:
        changed = sorted(set(now) ^ set(files) | {k for k in now if k in files and now[k] != files[k]})
        raise SweepStateError(f"{out}: {changed[0]} changed since spikelfp recorded the sweep's state "
                              f"({len(changed)} file(s)): not resuming it, since Ray Tune would unpickle its files")
    asked = json.loads(json.dumps(settings, sort_keys=True))
    diff = [k for part in ("grid", "binning", "base") for k in sorted(set(saved.get(part, {})) | set(asked[part]))
            if saved.get(part, {}).get(k) != asked[part].get(k)]
    if diff:
        raise SweepStateError(f"--resume continues the sweep with its own settings; these differ: {', '.join(diff)}")


def _ray():
    # Ray's C++ failure-signal handler (absl) takes SIGTERM as a crash: the driver died with SIGSEGV
    # instead of shutting Ray down (seen under load, when the signal came during ray.init). spikelfp
    # handles its signals itself; read by Ray at import, so set before it.
    os.environ.setdefault("RAY_DISABLE_FAILURE_SIGNAL_HANDLER", "1")
    try:
        import ray
        from ray import tune
    except ImportError:
        raise ImportError("spikelfp sweep needs Ray Tune: pip install 'spikelfp[ray]' (ray[tune]==2.60.0) or run "
                          "`make venv`") from None
    return ray, tune


_RAY_STARTED_AFTER = {"ticks": None}   # boot-relative start time (clock ticks) of our last local Ray start


def _proc_start_ticks(pid) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            rest = fh.read().rsplit(")", 1)[1].split()
        return int(rest[19])                  # field 22, starttime (after the ")" of the command name)
    except (OSError, IndexError, ValueError):
        return None


def _now_ticks() -> int:
    with open("/proc/uptime") as fh:
        return int(float(fh.read().split()[0]) * os.sysconf("SC_CLK_TCK"))


RAY_MARKERS = (b"raylet", b"gcs_server", b"dashboard", b"log_monitor", b"monitor.py", b"runtime_env")


def _our_ray_processes(since_ticks: int) -> list[tuple[int, int]]:
    """(pid, ppid) of this user's live Ray processes (``ray::...`` workers and agents, raylet,
    GCS, dashboard, monitors) started after ``since_ticks``; zombies are dead and skipped."""
    out, uid = [], os.getuid()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmd = fh.read(4096)
            with open(f"/proc/{pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            owner = os.stat(f"/proc/{pid}").st_uid
        except (OSError, ValueError, IndexError):
            continue
        if fields[0] == "Z" or owner != uid:
            continue
        start = _proc_start_ticks(pid)
        ray_like = cmd.startswith(b"ray::") or (b"/ray/" in cmd and any(m in cmd for m in RAY_MARKERS))
        if ray_like and start is not None and start >= since_ticks:
            out.append((int(pid), int(fields[1])))
    return out


def reap_orphaned_ray_agents(since_ticks: int | None, timeout: float = 30.0, grace: float = 5.0) -> list[int]:
    """After ``ray.shutdown()`` of a Ray instance this process started (at ``since_ticks``): wait
    until none of its processes is left, SIGKILLing orphans (parent gone) at once and, after
    ``grace`` seconds, whatever is still alive (shutdown has returned: nothing of it should be).
    On a loaded machine Ray's agents outlived their raylet by a minute or more otherwise. Linux
    only (/proc); returns the pids killed."""
    import signal
    import time

    if since_ticks is None or not os.path.isdir("/proc"):
        return []
    killed, t0 = [], time.monotonic()
    while True:
        left = _our_ray_processes(since_ticks)
        if not left or time.monotonic() - t0 > timeout:
            return killed
        late = time.monotonic() - t0 > grace
        for pid, ppid in left:
            if ppid == 1 or late:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except OSError:
                    pass
        time.sleep(0.2)


def init_ray(ray, **kwargs) -> None:
    """``ray.init(**kwargs)``, keeping the caller's SIGTERM handling: Ray installs its own SIGTERM
    handler, which would take over spikelfp's (SIGTERM as Ctrl-C, so that every ``finally`` --
    ``ray.shutdown()`` included -- runs). A failed or interrupted start shuts Ray down again."""
    import signal
    import threading

    main = threading.current_thread() is threading.main_thread()
    ours = (signal.SIGTERM, signal.SIGINT)
    prev = {s: signal.getsignal(s) for s in ours} if main else {}
    if kwargs.get("address"):
        check_reachable(kwargs["address"])
    else:
        _RAY_STARTED_AFTER["ticks"] = _now_ticks()
    real_signal = signal.signal

    def keep_ours(sig, handler):      # Ray's init installs its own SIGTERM/SIGINT handlers: not while we run
        return signal.getsignal(sig) if sig in ours else real_signal(sig, handler)

    if main:
        signal.signal = keep_ours
    try:
        ray.init(include_dashboard=False, log_to_driver=False, ignore_reinit_error=True, **kwargs)
    except BaseException:
        signal.signal = real_signal
        shutdown_ray(ray)
        raise
    finally:
        signal.signal = real_signal
        for s, h in prev.items():
            if h is not None:
                signal.signal(s, h)


def check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast (ConnectionError naming it) when nothing answers at a Ray ``host:port`` address;
    ``ray.init`` itself retries for minutes. ``auto`` and addresses without a port are left to Ray."""
    import socket

    a = address[len("ray://"):] if address.startswith("ray://") else address
    host, sep, port = a.rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout).close()
    except OSError as e:
        raise ConnectionError(f"--address {address}: no Ray cluster answers there ({e.strerror or e}); start one "
                              "with `ray start --head` or drop --address to run on this machine") from None


def shutdown_ray(ray) -> None:
    """``ray.shutdown()``, not cut short: a pending SIGTERM (re-raised every second by
    :mod:`spikelfp.interrupts` until handled -- Tune swallows the first) is acknowledged here, Ray
    is shut down whole (an interrupted shutdown left Ray's agent processes behind), and the
    interrupt is raised again afterwards so the command still ends as interrupted."""
    from . import interrupts

    signum = interrupts.pending()
    if signum is not None:
        interrupts.acknowledge()
    ray.shutdown()
    reap_orphaned_ray_agents(_RAY_STARTED_AFTER["ticks"])
    if signum is not None:
        raise KeyboardInterrupt(f"signal {signum}")


def parse_grid(items) -> dict:
    """``["rule=temporal,spike-count", "lr=1e-3,2e-3"]`` -> ``{"rule": [...], "lr": [0.001, 0.002]}``,
    each value converted to the TrainConfig field's type; unknown fields and empty lists are refused."""
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    defaults = TrainConfig()
    grid = {}
    for item in items:
        key, sep, values = str(item).partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not values.strip():
            raise ValueError(f"--grid takes key=v1,v2,... (got {item!r})")
        if key not in fields:
            raise ValueError(f"--grid {key}: not a training setting; choose from {', '.join(sorted(fields))}")
        if key in ("epochs",):
            raise ValueError("--grid epochs: every trial trains --epochs epochs (use --asha to stop early)")
        kind = type(getattr(defaults, key))
        if key == "hidden":
            raise ValueError("--grid hidden: grid over architectures with arch=d256,r256,c16k5s2-d128 instead")
        if getattr(defaults, key) is None:      # optional settings (reward, clip, chunks): typed by their values
            kind = _guess_type(values)
        out = []
        for v in values.split(","):
            v = v.strip()
            try:
                if kind is bool:
                    if v.lower() not in ("true", "false", "1", "0"):
                        raise ValueError(v)
                    out.append(v.lower() in ("true", "1"))
                elif kind in (int, float):
                    out.append(kind(v))
                else:
                    out.append(v)
            except ValueError:
                raise ValueError(f"--grid {key}: {v!r} is not a {kind.__name__}") from None
        if key in grid:
            raise ValueError(f"--grid {key} given twice")
        grid[key] = out
    return grid


def _guess_type(values: str):
    for kind in (int, float):
        try:
            [kind(v.strip()) for v in values.split(",")]
            return kind
        except ValueError:
            continue
    return str


def trial_configs(base: TrainConfig, grid: dict) -> list[TrainConfig]:
    """Every TrainConfig of the grid, validated before anything starts (a typo fails fast)."""
    keys = list(grid)
    return [TrainConfig.from_dict({**base.to_dict(), **dict(zip(keys, combo))})
            for combo in itertools.product(*(grid[k] for k in keys))]


def _trainable(config):
    """One Tune trial: an ordinary training run in the trial's folder, reporting each epoch."""
    import numba
    from ray import tune

    from . import datasets
    from .datasets import Binning
    from .train import Trainer

    base, binning = config["__base__"], config["__binning__"]
    numba.set_num_threads(max(1, int(config["__cpus__"])))
    overrides = {k: v for k, v in config.items() if not k.startswith("__")}
    cfg = TrainConfig.from_dict({**base, **overrides})
    b = Binning(**binning)
    train, test = datasets.load(cfg.dataset, b, root=config["__data_root__"])
    out = tune.get_context().get_trial_dir()
    Trainer(cfg, progress=False).fit(train, test, out, binning=b.to_dict(),
                                     epoch_callback=lambda rec: tune.report(rec))


def sweep(base: TrainConfig, grid: dict, out: str, *, binning, address: str | None = None, asha: bool = False,
          cpus_per_trial: int = 1, data_root: str | None = None, resume: bool = False, log=print) -> dict:
    """Run the grid as Ray Tune trials; write ``<out>/sweep.json`` and ``sweep.md``; return the report."""
    from .io import RunInUse, RunLock

    ray, tune = _ray()
    trial_configs(base, grid)                    # validate every combination first
    out = os.path.abspath(out)
    path = os.path.join(out, EXPERIMENT)
    if not address and cpus_per_trial > (os.cpu_count() or 1):
        raise ValueError(f"--cpus-per-trial {cpus_per_trial}: this machine has {os.cpu_count()} CPUs")
    os.makedirs(out, exist_ok=True)
    try:
        with RunLock(out):
            settings = {"grid": grid, "binning": binning.to_dict(), "base": base.to_dict()}
            if os.path.exists(path) and os.listdir(path):
                if not resume:
                    raise SweepStateError(f"{out} holds a sweep: --resume continues it, or choose another --out")
                check_manifest(out, settings)
            elif resume:
                raise SweepStateError(f"--resume: {out} holds no sweep to continue")
            return _sweep_locked(ray, tune, base, grid, out, path, binning=binning, address=address, asha=asha,
                                 cpus_per_trial=cpus_per_trial, data_root=data_root, log=log, settings=settings)
    except RunInUse as e:
        raise ValueError(str(e)) from None


def _sweep_locked(ray, tune, base, grid, out, path, *, binning, address, asha, cpus_per_trial, data_root, log,
                  settings):
    # Tune's own SIGINT handler would end the experiment "gracefully" and return as if done: let
    # Ctrl-C interrupt instead (exit 130, no report claiming completion, the state resumable)
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
    try:
        init_ray(ray, address=address, **({} if address else {"num_cpus": os.cpu_count()}))
        cpus = ray.cluster_resources().get("CPU", 0)
        if cpus_per_trial > cpus:
            raise ValueError(f"--cpus-per-trial {cpus_per_trial}: the Ray cluster has {cpus:g} CPUs")
        space = {k: tune.grid_search(v) for k, v in grid.items()}
        space.update({"__base__": base.to_dict(), "__binning__": binning.to_dict(), "__cpus__": cpus_per_trial,
                      "__data_root__": data_root})
        trainable = tune.with_resources(_trainable, {"cpu": cpus_per_trial})
        if tune.Tuner.can_restore(path):
            log(f"resuming the sweep in {path} (finished trials are kept)")
            tuner = tune.Tuner.restore(path, trainable, resume_errored=False, restart_errored=False,
                                       param_space=space)
        else:
            from ray.tune.schedulers import ASHAScheduler

            scheduler = ASHAScheduler(time_attr="epoch", max_t=base.epochs, grace_period=1) if asha else None
            tuner = tune.Tuner(trainable, param_space=space,
                               tune_config=tune.TuneConfig(metric=METRIC, mode="max", scheduler=scheduler),
                               run_config=tune.RunConfig(storage_path=out, name=EXPERIMENT, verbose=0,
                                                         failure_config=tune.FailureConfig(max_failures=0)))
        try:
            results = tuner.fit()
        finally:
            if os.path.isdir(path):
                write_manifest(out, settings)    # what this run left, signed: the only state --resume accepts
    finally:
        shutdown_ray(ray)
    report = _report(results, grid, base, binning, asha)
    write_json(os.path.join(out, "sweep.json"), report)
    from .io import atomic_path

    with atomic_path(os.path.join(out, "sweep.md")) as tmp, open(tmp, "w") as fh:
        fh.write(markdown(report))
    return report


def _report(results, grid, base, binning, asha) -> dict:
    trials = []
    for r in results:
        cfg = {k: v for k, v in (r.config or {}).items() if not k.startswith("__")}
        m = r.metrics or {}
        trials.append({"config": cfg, "test_accuracy": m.get(METRIC), "test_tie_rate": m.get("test_tie_rate"),
                       "epochs": m.get("epoch"), "train_seconds": m.get("train_seconds"),
                       "error": None if r.error is None else _error_line(r.error),
                       "folder": r.path})
    trials.sort(key=lambda t: json.dumps(t["config"], sort_keys=True))
    ok = [t for t in trials if t["error"] is None and t["test_accuracy"] is not None]
    best = max(ok, key=lambda t: t["test_accuracy"]) if ok else None
    return {"sweep": "grid", "grid": grid, "base": base.to_dict(), "binning": binning.to_dict(), "asha": asha,
            "trials": trials, "failed": sum(t["error"] is not None for t in trials),
            "best": best}


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _error_line(err) -> str:
    """A trial's error as one readable line: the innermost message, no colour codes."""
    text = _ANSI.sub("", str(err))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    last = next((ln for ln in reversed(lines) if re.match(r"^[A-Za-z_.]*(Error|Exception|Diverged)\b", ln)), None)
    return last or (f"{type(err).__name__}: {lines[-1]}" if lines else type(err).__name__)


def markdown(r: dict) -> str:
    keys = list(r["grid"])
    lines = [f"Sweep over {', '.join(keys)} ({len(r['trials'])} trials, {r['failed']} failed; dataset "
             f"{r['base']['dataset']}, {r['base']['epochs']} epochs{', ASHA' if r['asha'] else ''})", "",
             "| " + " | ".join(keys) + " | test accuracy | epochs | error |",
             "|" + "---|" * (len(keys) + 3)]
    for t in r["trials"]:
        acc = "" if t["test_accuracy"] is None else f"{t['test_accuracy']:.4f}"
        lines.append("| " + " | ".join(str(t["config"].get(k)) for k in keys) + f" | {acc} | {t['epochs'] or ''} | "
                     + (t["error"] or "").replace("|", "/")[:300] + " |")
    if r["best"]:
        lines += ["", f"Best: {r['best']['config']} -> {r['best']['test_accuracy']:.4f} ({r['best']['folder']})"]
    return "\n".join(lines) + "\n"


class RayFeedback:
    """The data-parallel feedback executor a :class:`~spikelfp.train.Trainer` takes
    (``Trainer(config, parallel=RayFeedback(2))``): each batch's feedback on ``workers`` Ray actors
    (:class:`ParallelFeedback`), local Ray or the cluster at ``address``."""

    def __init__(self, workers: int, address: str | None = None):
        if int(workers) < 1:
            raise ValueError("workers must be >= 1")
        self.workers, self.address = int(workers), address

    def __call__(self, rule, p, train) -> ParallelFeedback:
        return ParallelFeedback(rule, p, train, self.workers, address=self.address)


class ParallelFeedback:
    """``fb = ParallelFeedback(rule, packed, train, n_workers)(packed, idx)``: the batch ``idx``'s
    feedback computed by Ray actors, bit-identical to ``rule.feedback`` with the same chunking."""

    def __init__(self, rule, p, train, n_workers: int, *, address: str | None = None):
        ray, _ = _ray()
        import numba

        self.rule, self.train = rule, train
        self.n_workers = int(n_workers)
        if self.n_workers < 1:
            raise ValueError("workers must be >= 1")
        self._started = not ray.is_initialized()
        self._ray, self.actors = ray, []
        if not address and self.n_workers > (os.cpu_count() or 1):
            raise ValueError(f"--workers {self.n_workers}: this machine has {os.cpu_count()} CPUs (each worker "
                             "takes one); use at most that many, or a Ray cluster (--address)")
        if self._started:
            init_ray(ray, address=address, **({} if address else {"num_cpus": os.cpu_count()}))
        try:
            cpus = ray.cluster_resources().get("CPU", 0)
            if self.n_workers > cpus:
                raise ValueError(f"--workers {self.n_workers}: the Ray cluster has {cpus:g} CPUs")
            threads = max(1, numba.get_num_threads() // self.n_workers) if not address else 1
            cls = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=-1)(_Worker)
            # the data and the network's structure go with each call as nested references, fetched once
            # per actor (and again by a restarted one): an actor whose constructor takes object-store
            # arguments cannot be restarted once they are gone (ray-project/ray#53727)
            self._refs = [ray.put(train), ray.put(p)]
            self.actors = [cls.remote(rule, threads) for _ in range(self.n_workers)]
        except BaseException:
            self.close()
            raise

    def __call__(self, p, idx, fixed=None):
        """The feedback of the batch ``idx`` on the weights of ``p``. ``fixed`` (a
        :class:`spikelfp.loihi.FixedPacked`; ``p`` then its dequantized view): the forward is that
        Loihi integer run (``TrainConfig.quantize``); the workers get its integer arrays and build
        the same dequantized view themselves (:func:`spikelfp.loihi.dequantized`)."""
        from .feedback import ChunkParts

        ray = self._ray
        idx = np.asarray(idx)
        bounds = self.rule.bounds(idx.size)
        nc = bounds.size - 1
        if fixed is None:
            wt, bias, fx = ray.put(p.WT), ray.put(p.bias), None
        else:
            wt = bias = None
            fx = ray.put(fixed._replace(p=None))   # the integer arrays; the structure is the workers' own
        futures = []
        n = min(self.n_workers, nc)
        for w in range(n):                       # worker w: the contiguous chunks c0..c1-1
            c0, c1 = w * nc // n, (w + 1) * nc // n
            lo, hi = int(bounds[c0]), int(bounds[c1])
            futures.append(self.actors[w].parts.remote(self._refs, wt, bias, idx[lo:hi], bounds[c0: c1 + 1] - lo,
                                                       fx))
        got = ray.get(futures)
        parts = ChunkParts(*(np.concatenate([g[k] for g in got], axis=0) for k in range(5)))
        return self.rule.reduce(p, parts)

    def describe(self) -> str:
        return f"data-parallel feedback on {self.n_workers} Ray workers"

    def close(self) -> None:
        for a in self.actors:
            try:
                self._ray.kill(a)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self.actors, self._refs = [], []
        if self._started:
            shutdown_ray(self._ray)


class _Worker:
    """A Ray actor: the training set and the network's structure, computing chunks' feedback."""

    def __init__(self, rule, threads: int):
        import numba

        from .blas import single_threaded_blas

        numba.set_num_threads(max(1, int(threads)))
        single_threaded_blas().__enter__()      # as in the driver: BLAS on one thread (same bits)
        self.train = self.packed = None
        self.rule = rule

    def parts(self, refs, WT, bias, idx, bounds, fixed=None):
        if self.train is None:                  # first call (or first after a restart)
            import ray

            self.train, self.packed = ray.get(refs)
        if fixed is None:
            p = self.packed._replace(WT=WT, bias=bias)
        else:                                   # a Loihi fixed-point step: the driver's FixedPacked arrays
            from .loihi import dequantized

            fixed = fixed._replace(p=self.packed)
            p = dequantized(self.packed, fixed)
        return tuple(self.rule.parts(p, self.train.batch(idx), self.train.labels[idx], np.asarray(bounds),
                                     **({} if fixed is None else {"fixed": fixed})))


__all__ = ["sweep", "parse_grid", "trial_configs", "markdown", "ParallelFeedback"]
