"""Datasets for spikelfp: a registry of event datasets, binning, and the HDF5 cache.

Imported as ``spikelfp.datasets`` (never a top-level ``datasets``, which would shadow
HuggingFace's package).

Example
-------
>>> from spikelfp import datasets
>>> train, test = datasets.load("digits-saccade")      # doctest: +SKIP
>>> train.n_in, train.n_steps                          # doctest: +SKIP
(578, 30)
"""

from .base import EventDataset
from .binning import Binning, bin_events
from .interop import as_event_datasets, from_events, from_frames
from .registry import DATASETS, DatasetSpec, data_root, get_spec, load

__all__ = ["EventDataset", "Binning", "bin_events", "DATASETS", "DatasetSpec", "data_root",
           "get_spec", "load", "from_events", "from_frames", "as_event_datasets"]
