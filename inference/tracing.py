"""Serve a model as a traced TorchScript graph when that gives the very same answers.

Why: an eager forward pass is dozens of Python-level module calls, and every torch op drops
and re-takes the GIL; in a serving process the event loop, the decoders and the runtime's
worker share that GIL, so each re-take can wait out another thread's switch interval (5 ms).
A traced module runs the whole graph in C++ from one call. Measured on the 2-core host
(2026-12-02, load average ~8): batch-16 forward passes of small_cnn and ResNet-18 beside a
busy Python thread took 264 and 583 ms traced against 471 and 1,057 ms eager, and the
outputs were bitwise equal at batch sizes 1 to 16.

Only where it is safe: the serving loader traces the built-in architectures alone
(``traced_by_default``), whose forward passes are pure tensor code; a custom
``package.module:factory`` model keeps its Python forward as written (a trace would drop its
side effects, sleeps, switches and logging). And the traced graph must reproduce the eager
outputs exactly (batch sizes 1 and 3, zeros and noise) or the eager module is served.
``NIGHTSCAN_TRACE=0`` turns it off.
"""

from __future__ import annotations

import logging
import os
import warnings

import torch
from torch import nn

log = logging.getLogger(__name__)


def tracing_enabled() -> bool:
    return os.environ.get("NIGHTSCAN_TRACE", "1").strip().lower() not in ("0", "false", "no")


def traced_by_default(architecture: str) -> bool:
    """Whether serving traces this architecture: the built-ins, not custom factories."""
    from inference.architectures import BUILTIN_ARCHITECTURES, canonical_architecture

    return tracing_enabled() and canonical_architecture(architecture) in BUILTIN_ARCHITECTURES


def trace_for_serving(model: nn.Module, window_samples: int, device: str = "cpu") -> nn.Module:
    """``model`` (in eval mode) as a traced module if its outputs are bitwise the same, else
    ``model`` itself. The caller's module is not changed."""
    if not tracing_enabled() or isinstance(model, torch.jit.ScriptModule):
        return model
    model = model.eval()
    generator = torch.Generator().manual_seed(0)
    probes = [
        torch.zeros(1, window_samples),
        torch.randn(3, window_samples, generator=generator) * 0.1,
    ]
    probes = [p.to(device) for p in probes]
    # One thread: with the OpenMP backend every OS thread that runs a parallel op keeps its own
    # pool for life, and an extra pool slows every later forward pass (inference/runtime.py).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # TracerWarnings: the check below decides
            traced = torch.jit.trace(model, probes[0], check_trace=False)
            for x in probes:
                eager_out, traced_out = model(x), traced(x)
                if not (
                    isinstance(eager_out, torch.Tensor)
                    and isinstance(traced_out, torch.Tensor)
                    and torch.equal(eager_out, traced_out)
                ):
                    log.info("serving %s eagerly: its trace does not reproduce its outputs",
                             type(model).__name__)  # fmt: skip
                    return model
    except Exception as exc:  # untraceable (value-dependent control flow, odd outputs...)
        log.info("serving %s eagerly: it cannot be traced (%s)", type(model).__name__, exc)
        return model
    finally:
        torch.set_num_threads(threads)
    return traced.eval()
