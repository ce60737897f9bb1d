"""spikelfp: Layer-wise Feedback Propagation for spiking LIF networks.

Quick start
-----------
>>> import numpy as np, spikelfp
>>> net = spikelfp.Network.random([578, 256, 10], seed=0)
>>> x = (np.random.default_rng(0).random((4, 30, 578)) < 0.1).astype(np.uint8)
>>> rec = spikelfp.simulate(net, x)
>>> rec.counts[-1].shape
(4, 10)
"""

__version__ = "0.1.0"

from .events import EventBatch
from .feedback import REWARDS, RULES, Feedback, RateReward, SoftmaxReward, SpikeCount, Temporal, check_conservation
from .network import ConvLayer, LIFLayer, LIFParams, Network
from .simulate import Record, predict, simulate, tie_rate

__all__ = [
    "__version__", "EventBatch", "Network", "LIFLayer", "ConvLayer", "LIFParams", "simulate", "Record", "predict",
    "tie_rate", "Temporal", "SpikeCount", "RateReward", "SoftmaxReward", "Feedback", "RULES",
    "REWARDS", "check_conservation", "Trainer",
]


def __getattr__(name):  # lazy: the trainer pulls in h5py/tqdm
    if name == "Trainer":
        from .train import Trainer
        return Trainer
    if name in ("plot", "prune", "datasets"):      # lazy submodules: matplotlib, h5py, tonic
        import importlib
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'spikelfp' has no attribute {name!r}")
