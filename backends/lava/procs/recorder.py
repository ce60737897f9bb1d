"""A Lava sink that records binary spikes and writes them to a ``.npy`` file at its last step.

Reading a Lava Var back costs ~60 us per value; a trained 256-neuron layer over thousands of steps
would take minutes. This process keeps the spikes in its own process model and saves them in one
write (temporary file, then rename) when ``time_step == n_steps``.

Only absolute imports: Lava's model discovery executes this file standalone.
"""

import os

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol


class SpikeRecorder(AbstractProcess):
    """Records ``n_steps`` steps of spikes of shape (n,) into ``path`` as uint8 (n_steps, n)."""

    def __init__(self, *, shape, n_steps: int, path: str, **kwargs):
        super().__init__(shape=shape, n_steps=int(n_steps), path=str(path), **kwargs)
        self.a_in = InPort(shape=shape)


class _RecorderModel(PyLoihiProcessModel):
    a_in = None

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._n_steps = proc_params["n_steps"]
        self._path = proc_params["path"]
        self._buf = None

    def run_spk(self):
        data = self.a_in.recv()
        if self._buf is None:
            self._buf = np.zeros((self._n_steps, data.size), dtype=np.uint8)
        k = self.time_step - 1
        if k < self._n_steps:
            self._buf[k] = np.asarray(data).ravel() != 0
        if self.time_step == self._n_steps:
            tmp = self._path + ".part.npy"
            np.save(tmp, self._buf)
            os.replace(tmp, self._path)


@implements(proc=SpikeRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyRecorderModelFloat(_RecorderModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)


@implements(proc=SpikeRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyRecorderModelFixed(_RecorderModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
