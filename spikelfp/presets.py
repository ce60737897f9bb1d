"""Named settings for ``spikelfp train --preset`` and ``spikelfp bench --preset``.

``paper-mlp`` reproduces the small SNN setting of the authors' LFP notebooks (Weber et al.,
arXiv:2308.12053): LIF MLP n_in-1000-10, T = 15, beta 0.9, theta 1, subtract reset, the temporal
rule in the authors' form (lfprop 1.0.0: `--form paper`, spike credit) with the rate-coded reward,
SGD lr 0.02 momentum 0.9.
T = 15 keeps the dataset's window and
splits it into 15 bins. Explicit command-line options override a preset.
"""

PRESETS = {
    "paper-mlp": {
        "hidden": [1000], "beta": 0.9, "threshold": 1.0, "reset": "subtract", "rule": "temporal",
        "reward": "rate", "form": "paper", "contrib": "spikes", "optimizer": "sgd", "lr": 0.02, "momentum": 0.9,
        "n_bins": 15,
    },
}


def get_preset(name: str) -> dict:
    try:
        return dict(PRESETS[name])
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
