"""Compatibility shims for optional dependencies.

lava-nc 0.10.0 declares Python < 3.11. On 3.11 it runs, except that
``lava.magma.compiler.var_model`` gives dataclass fields an unhashable dataclass instance as
default (``x: ByteEncoder = ByteEncoder()``), which Python 3.11 rejects as a mutable default.
:func:`patch_lava` imports that one module while dataclasses turn such defaults into
``default_factory`` copies (each instance gets its own copy: what the author meant), so every
later ``import lava...`` works.

Lava also calls ``multiprocessing.set_start_method('fork')`` on import, which raises once anything
(numba's parallel launch, for one) has fixed the start method. The shim lets that one call
through with ``force=True``. Call :func:`patch_lava` before importing lava; it is idempotent.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import sys


def patch_lava() -> None:
    if "lava.magma.runtime.message_infrastructure.multiprocessing" in sys.modules:
        return
    import multiprocessing as mp

    orig = dataclasses._get_field
    orig_set = mp.set_start_method

    def _get_field(cls, a_name, a_type, *args, **kwargs):
        default = cls.__dict__.get(a_name, dataclasses.MISSING)
        if (dataclasses.is_dataclass(default) and not isinstance(default, type)
                and type(default).__hash__ is None):
            setattr(cls, a_name, dataclasses.field(default_factory=functools.partial(copy.deepcopy, default)))
        return orig(cls, a_name, a_type, *args, **kwargs)

    dataclasses._get_field = _get_field
    mp.set_start_method = lambda method, force=False: orig_set(method, force=True)
    try:
        import lava.magma.compiler.var_model  # noqa: F401
        import lava.magma.runtime.message_infrastructure.multiprocessing  # noqa: F401
    except ImportError as e:
        raise ImportError(
            "the Lava backend needs lava-nc: pip install 'networkx<=2.8.7' 'asteval<0.10' scipy "
            "scikit-learn && pip install --no-deps --ignore-requires-python lava-nc==0.10.0 "
            f"(or run `make venv`); import failed with: {e}") from None
    finally:
        dataclasses._get_field = orig
        mp.set_start_method = orig_set
