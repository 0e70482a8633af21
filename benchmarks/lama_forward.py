"""Forward time of big-lama (random weights) here, per optimisation, precision and backend.

    .venv/bin/python benchmarks/lama_forward.py                    # 512² and 1024², 3 runs each
    .venv/bin/python benchmarks/lama_forward.py --runs 5 --sizes 512
    .venv/bin/python benchmarks/lama_forward.py --compile          # also torch.compile (slow)
    .venv/bin/python benchmarks/lama_forward.py --only crop        # the 4096x3072 crop case
    .venv/bin/python benchmarks/lama_forward.py --only crop --full-resolution   # + the full
                                                     # 4096x3072 forward it avoids (~5 min, ~9 GiB)
    .venv/bin/python benchmarks/lama_forward.py --only precision   # fp32/bf16/fp16/TorchScript
                                 # at 512², 1024², 2048², 1 and 2 threads, with parity figures
    .venv/bin/python benchmarks/lama_forward.py --only precision --quick   # 512², 1 run

Prints one table per section. Each variant is checked against the plain eager forward on the
same input (largest absolute difference in [0, 1] units), because an optimisation only counts
if it leaves the output as it was; the precision section compares the uint8 results the
service would send (levels of 255, over the masked pixels) with fp32's. Peak RSS is the
process's high-water mark after each row, so it only ever grows down the table. Random
weights: timings are those of the real model (same shapes, same operations); the pixels are
meaningless. The CPU model, its bf16 flags and the load average are printed: figures from
different machines, or from a busy one, are not to be compared.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runners.devices import Hardware, Precision, choose_precision, read_cpu_flags
from runners.hd_strategy import HdInpainter
from runners.lama.configs import BIG_LAMA
from runners.lama.inpainter import LamaInpainter
from runners.lama.network import InpaintingNetwork
from runners.lama.weights import export_torchscript, load_torchscript, random_network
from runners.parity import compare, parity_inputs
from tests.runners.images import text_mask, textured_image

Row = tuple[str, str, float, float, float | None, str, float]
"""input, variant, median s, best s, max |difference|, note, peak RSS MB when measured."""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="timed runs per row (median shown)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument(
        "--full-resolution",
        action="store_true",
        help="crop section: also run the full 4096x3072 forward once, instead of estimating it",
    )
    parser.add_argument(
        "--only",
        choices=["forward", "batch", "crop", "precision"],
        nargs="+",
        default=None,
        help="sections (default: forward, batch, crop)",
    )
    parser.add_argument(
        "--precisions",
        nargs="+",
        default=["fp32", "bf16", "fp16"],
        choices=[str(p) for p in Precision],
        help="precision section: the precisions timed (fp32 is always the reference)",
    )
    parser.add_argument(
        "--precision-sizes",
        type=int,
        nargs="+",
        default=[512, 1024, 2048],
        help="precision section",
    )
    parser.add_argument(
        "--thread-counts",
        type=int,
        nargs="+",
        default=[1, 2],
        help="precision section: torch threads, one block each",
    )
    parser.add_argument(
        "--quick", action="store_true", help="precision section: 512² only, 1 run, these threads"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sections = set(args.only or ["forward", "batch", "crop"])
    # Scaled weights: the max|Δ| column compares real outputs, not saturated 0s and 1s.
    network = random_network(BIG_LAMA, seed=0, weight_scale=0.5)
    rows: list[Row] = []
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, runs={args.runs}")
    print(machine_description())
    if "precision" in sections:
        sizes = [512] if args.quick else args.precision_sizes
        counts = [torch.get_num_threads()] if args.quick else args.thread_counts
        precision_section(
            network,
            sizes=sizes,
            thread_counts=counts,
            runs=1 if args.quick else args.runs,
            precisions=[Precision(p) for p in args.precisions],
            with_compile=args.compile,
        )
    if "forward" in sections:
        for size in args.sizes:
            rows += forward_rows(network, size, args.runs, with_compile=args.compile)
    if "batch" in sections:
        rows += batch_rows(network, args.sizes[0], args.runs)
    if "crop" in sections:
        rows += crop_rows(network, args.runs, rows, full_resolution=args.full_resolution)
    if rows:
        print_table(rows)


def forward_rows(
    network: InpaintingNetwork, size: int, runs: int, *, with_compile: bool
) -> list[Row]:
    image, mask = _inputs(1, size)
    variants: list[tuple[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]]] = []
    variants.append(("eager fp32, no_grad", _no_grad(network)))
    variants.append(("eager fp32, inference_mode", _inference(network)))
    channels_last = copy.deepcopy(network).to(memory_format=torch.channels_last)
    variants.append(("+ channels_last", _inference(channels_last, channels_last=True)))
    traced = torch.jit.trace(
        network, (image[..., :64, :64], mask[..., :64, :64]), check_trace=False
    )
    variants.append(("TorchScript (our export)", _inference(traced)))
    traced_last = copy.deepcopy(traced).to(memory_format=torch.channels_last)
    variants.append(("TorchScript + channels_last", _inference(traced_last, channels_last=True)))
    if with_compile:
        variants.append(("+ torch.compile", _compiled(network)))
    with torch.inference_mode():
        reference = network(image, mask)
    outputs, firsts = {}, {}
    for name, forward in variants:
        started = time.perf_counter()
        outputs[name] = forward(image, mask)  # warm-up; for torch.compile, the compilation
        firsts[name] = time.perf_counter() - started
    # Runs interleave the variants (A B C, A B C, ...) so that a change in the machine's
    # load during the benchmark hits every variant alike.
    times: dict[str, list[float]] = {name: [] for name, _ in variants}
    for _ in range(runs):
        for name, forward in variants:
            times[name] += _time(lambda f=forward: f(image, mask), 1)
    rows: list[Row] = []
    for name, _ in variants:
        difference = float((outputs[name] - reference).abs().max())
        note = f"first call {firsts[name]:.1f} s" if name.endswith("compile") else ""
        median, best = statistics.median(times[name]), min(times[name])
        rows.append((f"{size}²", name, median, best, difference, note, _peak_rss_mb()))
        print(_format(rows[-1]), flush=True)
    return rows


PrecisionRow = tuple[str, int, str, float, float, float, int | None, float | None, str]
"""input, threads, variant, median s, best s, median CPU s, max levels off fp32, share over
one level, note. CPU seconds (all threads of this process) are the work done: on a shared
machine they move far less with other people's load than the wall time does."""


def precision_section(
    network: InpaintingNetwork,
    *,
    sizes: list[int],
    thread_counts: list[int],
    runs: int,
    precisions: list[Precision],
    with_compile: bool,
) -> list[PrecisionRow]:
    """The service's forward (`LamaInpainter`: padding, channels_last, uint8 out) per precision,
    next to today's TorchScript path, per size and thread count; variants interleaved."""
    rows: list[PrecisionRow] = []
    print(
        f"\n{'input':>10} {'thr':>3}  {'variant':<38} {'median':>9} {'best':>9} {'CPU':>9} "
        f"{'max Δ':>6} {'>1 level':>9}  note"
    )
    traced = _traced(network)
    for threads in thread_counts:
        torch.set_num_threads(threads)
        for size in sizes:
            image, mask = parity_inputs((size, size), seed=size)
            variants: dict[str, LamaInpainter] = {
                f"torch {p}" + (" (channels_last)" if p is Precision.FP32 else " autocast"): (
                    LamaInpainter(network, precision=p)
                )
                for p in dict.fromkeys([Precision.FP32, *precisions])
            }
            variants["TorchScript fp32 (before: traced file)"] = LamaInpainter(traced)
            notes: dict[str, str] = {}
            if with_compile:
                compiled = LamaInpainter(copy.deepcopy(network))
                started = time.perf_counter()
                compiled.compile([(size, size)])
                notes["torch.compile fp32"] = f"compile {time.perf_counter() - started:.0f} s"
                variants["torch.compile fp32"] = compiled
            outputs = {name: inpainter.inpaint(image, mask) for name, inpainter in variants.items()}
            times: dict[str, list[float]] = {name: [] for name in variants}
            cpu: dict[str, list[float]] = {name: [] for name in variants}
            load_before = _load()
            for _ in range(runs):
                for name, inpainter in variants.items():
                    wall, work = time.perf_counter(), time.process_time()
                    inpainter.inpaint(image, mask)
                    times[name].append(time.perf_counter() - wall)
                    cpu[name].append(time.process_time() - work)
            reference = next(iter(outputs.values()))
            for name in variants:
                levels, share = compare(reference, outputs[name], mask)
                row: PrecisionRow = (
                    f"{size}²",
                    threads,
                    name,
                    statistics.median(times[name]),
                    min(times[name]),
                    statistics.median(cpu[name]),
                    levels,
                    share,
                    notes.get(name, f"load {load_before} -> {_load()}"),
                )
                rows.append(row)
                print(_format_precision(row), flush=True)
    return rows


def _traced(network: InpaintingNetwork) -> torch.jit.ScriptModule:
    """Our network as a traced file, as big-lama.pt runs when it is not moved into ours."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big-lama.pt"
        export_torchscript(copy.deepcopy(network), path)
        return load_torchscript(path, torch.device("cpu"))


def _format_precision(row: PrecisionRow) -> str:
    size, threads, name, median, best, cpu, levels, share, note = row
    parity = f"{levels:>6} {100 * share:8.3f}%" if levels is not None and share is not None else ""
    return (
        f"{size:>10} {threads:>3}  {name:<38} {median:8.2f}s {best:8.2f}s {cpu:8.2f}s "
        f"{parity}  {note}"
    )


def machine_description() -> str:
    """CPU model, the flags `auto` looks at, torch's ISA: which machine the figures are from."""
    flags = read_cpu_flags()
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    shown = sorted(flags & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "amx_fp16"})
    hardware = Hardware(flags, str(torch.backends.cpu.get_cpu_capability()))
    auto = choose_precision("auto", "cpu", hardware)
    return (
        f"CPU: {model}; flags {' '.join(shown) or 'none of avx2/avx512/amx'}; torch ISA "
        f"{hardware.torch_cpu_capability}; IOPAINT_PRECISION=auto picks {auto.precision} here; "
        f"load average {_load()}"
    )


def _load() -> str:
    return "/".join(f"{value:.1f}" for value in os.getloadavg())


def batch_rows(network: InpaintingNetwork, size: int, runs: int) -> list[Row]:
    """Does a batch of two same-size images cost less than two forwards on CPU?"""
    image, mask = _inputs(2, size)
    forward = _inference(network)
    forward(image[:1], mask[:1])
    single = _time(lambda: forward(image[:1], mask[:1]), runs)
    pair = _time(lambda: forward(image, mask), runs)
    with torch.inference_mode():
        apart = torch.cat([network(image[:1], mask[:1]), network(image[1:], mask[1:])])
        together = network(image, mask)
    difference = float((apart - together).abs().max())
    rows: list[Row] = [
        (
            f"{size}²",
            "batch of 1",
            statistics.median(single),
            min(single),
            None,
            "per image",
            _peak_rss_mb(),
        ),
        (
            f"{size}²",
            "batch of 2 (one forward)",
            statistics.median(pair) / 2,
            min(pair) / 2,
            difference,
            "per image",
            _peak_rss_mb(),
        ),
    ]
    for row in rows:
        print(_format(row), flush=True)
    return rows


def crop_rows(
    network: InpaintingNetwork, runs: int, earlier: list[Row], *, full_resolution: bool
) -> list[Row]:
    """Large images under the HD strategies, against the full-resolution forward they avoid.

    - a 600x150 logo in the corner of a 4096x3072 photo, `auto` strategy;
    - a line of 80 glyphs on a 1024² photo, `crop` strategy: one forward over the line's
      span, not one per glyph (IOPaint's per-contour crops took 124-205 s here).
    """
    height, width = 3072, 4096
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    mask = np.zeros((height, width), np.uint8)
    mask[height - 200 : height - 50, width - 650 : width - 50] = 255
    inpainter = LamaInpainter(network)  # as the runner builds it (channels_last on CPU)
    logo = _strategy_row(HdInpainter(inpainter, strategy="auto"), image, mask, runs, "mask 600x150")
    glyphs = _strategy_row(
        HdInpainter(inpainter, strategy="crop"),
        textured_image(1024, 1024, seed=2),
        text_mask(1024, 1024, glyphs=80, top=900, left=100),
        runs,
        "80-glyph text mask",
    )
    rows = [logo, glyphs]
    name = "original strategy (full resolution)"
    if full_resolution:
        # One run: it takes minutes. Its peak RSS is this process's high-water mark.
        full = _time(lambda: inpainter.inpaint(image, mask), 1)[0]
        note = f"measured once; {full / logo[2]:.0f}x the {logo[1]}"
        rows.append(("4096x3072", name, full, full, None, note, _peak_rss_mb()))
        print(_format(rows[-1]), flush=True)
        return rows
    full_1024 = [row for row in earlier if row[0] == "1024²" and row[1].endswith("inference_mode")]
    if full_1024:
        # Convolutions scale with the pixel count (12x 1024²), the FFTs slightly more, so
        # this is a lower bound; --full-resolution measures it.
        estimate = full_1024[0][2] * (height * width) / 1024**2
        note = "estimate: 12 x the 1024² forward (lower bound; --full-resolution measures)"
        rows.append(("4096x3072", name, estimate, estimate, None, note, float("nan")))
        print(_format(rows[-1]), flush=True)
    return rows


def _strategy_row(
    hd: HdInpainter, image: np.ndarray, mask: np.ndarray, runs: int, label: str
) -> Row:
    """Time `hd` on one image (after a warm-up) and name the forwards its plan runs."""
    chosen = hd.plan_forwards(mask)
    hd.inpaint(image, mask)
    times = _time(lambda: hd.inpaint(image, mask), runs)
    boxes = ", ".join(f"{r.box.width}x{r.box.height}" for r in chosen.regions)
    height, width = mask.shape
    row: Row = (
        f"{width}²" if width == height else f"{width}x{height}",
        f"{chosen.strategy} strategy, {label}",
        statistics.median(times),
        min(times),
        None,
        f"{len(chosen.regions)} forward(s): {boxes}",
        _peak_rss_mb(),
    )
    print(_format(row), flush=True)
    return row


def _inputs(batch: int, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(size)
    image = torch.rand((batch, 3, size, size), generator=generator)
    mask = torch.zeros((batch, 1, size, size))
    mask[..., size // 4 : size // 2, size // 4 : 3 * size // 4] = 1
    return image, mask


def _no_grad(module: torch.nn.Module) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    def forward(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return module(image, mask)

    return forward


def _inference(
    module: torch.nn.Module, *, channels_last: bool = False
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    def forward(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            if channels_last:
                image = image.contiguous(memory_format=torch.channels_last)
                mask = mask.contiguous(memory_format=torch.channels_last)
            return module(image, mask)

    return forward


def _compiled(network: InpaintingNetwork) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    compiled = torch.compile(copy.deepcopy(network), dynamic=False)
    return _inference(compiled)


def _time(call: Callable[[], object], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _format(row: Row) -> str:
    size, name, median, best, difference, note, rss_mb = row
    diff = f"{difference:.1e}" if difference is not None else "-"
    return (
        f"{size:>10}  {name:<38} {median:8.2f} s {best:8.2f} s  {diff:>8}  {rss_mb:7.0f} MB  {note}"
    )


def print_table(rows: list[Row]) -> None:
    print()
    print(
        f"{'input':>10}  {'variant':<38} {'median':>10} {'best':>10}  {'max|Δ|':>8}  "
        f"{'peak RSS':>10}  note"
    )
    for row in rows:
        print(_format(row))


if __name__ == "__main__":
    main()
