"""From loaded LaMa weights to the inpainter the runner serves, and the record of how.

In order, once, as the runner starts:

1. a TorchScript file whose tensors fit our architecture (IOPaint's `big-lama.pt`, our
   exports) moves into the native network, if both give the same fp32 pixels on the
   parity input; otherwise the traced file runs as it is, in fp32;
2. a reduced precision (`runners.devices.choose_precision`) is compared against fp32 on
   the parity input (`runners.parity`); beyond the tolerance the runner serves fp32 and
   says why, in the log and in health;
3. with `IOPAINT_COMPILE=dynamic`, the network is compiled and run on a few sizes, so
   that no request pays for compiling (`runners.lama.compiled`).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch
from torch import nn

from runners.devices import ComputePlan, ComputeReport
from runners.inpainter import Inpainter
from runners.lama.configs import LamaConfig
from runners.lama.inpainter import LamaInpainter
from runners.lama.network import InpaintingNetwork
from runners.lama.weights import native_network_from_torchscript
from runners.parity import PARITY_SIZE, ParityReport, check_parity, compare, parity_inputs
from settings import CompileChoice

logger = logging.getLogger(__name__)

CONVERSION_MAX_LEVELS = 1
"""The converted network must give the traced file's uint8 pixels: two fp32 runs of the
same operations differ by rounding only (a value landing on .5 may round either way); a
different computation is tens of levels off."""


@dataclass(frozen=True)
class NetworkChoice:
    network: nn.Module
    runtime: str
    """``native``, ``torchscript`` (a traced file run as it is), or ``module`` (anything
    else, tests' wrappers)."""
    note: str | None = None
    """Why a TorchScript file stayed traced."""


def choose_network(loaded: nn.Module, config: LamaConfig, device: str) -> NetworkChoice:
    """`loaded` itself, or the native network with its tensors when that changes no pixel."""
    if isinstance(loaded, InpaintingNetwork):
        return NetworkChoice(loaded, "native")
    if not isinstance(loaded, torch.jit.ScriptModule):
        return NetworkChoice(loaded, "module", "not a LaMa network or TorchScript file")
    native = native_network_from_torchscript(loaded, config)
    if native is None:
        note = f"its tensors do not fit the {config.name} architecture"
        logger.info("TorchScript weights run as traced, in fp32: %s", note)
        return NetworkChoice(loaded, "torchscript", note)
    image, mask = parity_inputs()
    traced_pixels = LamaInpainter(loaded, device=device).inpaint(image, mask)
    native = native.to(torch.device(device))
    native_pixels = LamaInpainter(native, device=device).inpaint(image, mask)
    levels, _ = compare(traced_pixels, native_pixels, mask)
    unmasked_equal = bool((traced_pixels[mask == 0] == native_pixels[mask == 0]).all())
    if levels > CONVERSION_MAX_LEVELS or not unmasked_equal:
        note = f"the native network with its tensors differs from it (max Δ {levels}/255)"
        logger.warning("TorchScript weights run as traced, in fp32: %s", note)
        return NetworkChoice(loaded, "torchscript", note)
    logger.info("TorchScript weights run in the native network (same pixels in fp32)")
    return NetworkChoice(native, "native")


@dataclass(frozen=True)
class PrecisionOutcome:
    served: Inpainter
    """The candidate when it passed, else the fp32 reference."""
    parity: ParityReport
    fallback: str | None
    """The failed check's summary when the reference is served instead."""


def settle_precision(reference: Inpainter, candidate: Inpainter, label: str) -> PrecisionOutcome:
    """Serve `candidate` if it passes the parity check against `reference`, else the reference."""
    report = check_parity(reference, candidate, label=label)
    if report.passed:
        logger.info("Parity check: %s", report.summary())
        return PrecisionOutcome(candidate, report, None)
    logger.warning("Serving fp32, not %s: %s", label, report.summary())
    return PrecisionOutcome(reference, report, report.summary())


def prepare_inpainter(
    loaded: nn.Module,
    config: LamaConfig,
    compute: ComputePlan,
    *,
    requested_precision: str,
    compile_mode: CompileChoice = "off",
) -> LamaInpainter:
    """The inpainter to serve, its `compute` report filled in."""
    choice = choose_network(loaded, config, compute.device)
    plan = compute.precision
    served = LamaInpainter(choice.network, device=compute.device)
    parity: dict[str, object] | None = None
    fallback = None
    if plan.precision.reduced and choice.runtime != "native":
        fallback = (
            f"{plan.precision} needs the native network; the TorchScript file stays traced: "
            f"{choice.note}"
        )
        logger.warning("Serving fp32, not %s: %s", plan.precision, fallback)
    elif plan.precision.reduced:
        candidate = LamaInpainter(choice.network, device=compute.device, precision=plan.precision)
        outcome = settle_precision(served, candidate, str(plan.precision))
        parity, fallback = outcome.parity.to_dict(), outcome.fallback
        if outcome.served is candidate:
            served = candidate
    compiled = "off"
    if compile_mode != "off":
        compiled = _compile(served, choice, compile_mode)
    served.compute = ComputeReport(
        precision=str(served.precision),
        requested=requested_precision,
        reason=plan.reason,
        parity=parity,
        fallback=fallback,
        compile=compiled,
        runtime=choice.runtime,
        cpu_threads=compute.cpu_threads,
    )
    return served


COMPILE_WARM_UP_SIZES = ((PARITY_SIZE[0], PARITY_SIZE[1]), (512, 512), (776, 520))
"""(height, width) run at start-up. The first is not square: from a square first input the
graph would assume height == width (dynamo's "duck sizing") and every other request would
need a graph of its own. The others check that the graph holds for new sizes; a size that
still needs one (very small images cross guards on tensor sizes) runs eagerly."""


def _compile(served: LamaInpainter, choice: NetworkChoice, mode: CompileChoice) -> str:
    if choice.runtime != "native":
        logger.warning("IOPAINT_COMPILE=%s ignored: TorchScript weights are already a graph", mode)
        return f"off (IOPAINT_COMPILE={mode} needs the native network)"
    started = time.perf_counter()
    try:
        served.compile(COMPILE_WARM_UP_SIZES)
    except Exception as exc:  # a missing C++ compiler, an unsupported op: serve eager instead
        logger.warning("torch.compile failed, serving the eager network: %s", exc)
        return f"off (compile failed: {type(exc).__name__}: {str(exc)[:160]})"
    elapsed = time.perf_counter() - started
    logger.info("LaMa compiled (%s) in %.0f s", mode, elapsed)
    return f"{mode} (compiled at start-up in {elapsed:.0f} s)"
