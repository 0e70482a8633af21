"""LaMa weights in the two file formats users have, and our export to the shared one.

- **TorchScript** (`big-lama.pt`, `anime-manga-big-lama.pt`; IOPaint and lama-cleaner):
  a traced module called as ``model(image, mask)`` under the contract of
  `runners.lama.network`. Loaded as is; whatever architecture it holds runs.
- **Lightning checkpoint** (`big-lama/models/best.ckpt` from advimman/lama): a pickled
  dict whose `state_dict` holds `generator.*` tensors next to discriminator and loss
  weights. The generator part is loaded into our `InpaintingNetwork` with strict keys.

`export_torchscript` writes our network as a traced module in the TorchScript convention,
so the file is interchangeable with IOPaint's.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import uuid
import warnings
import zipfile
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from runners.lama.configs import LamaConfig
from runners.lama.network import InpaintingNetwork

GENERATOR_PREFIX = "generator."
EXPORT_METADATA_FILE = "iopaint_api.json"
"""Extra file our exports carry inside the TorchScript archive (IOPaint ignores it)."""

# Traced at a size that is a multiple of 8 but not a power of two, so that nothing in the
# trace can silently depend on power-of-two FFT sizes. The trace is size-generic (tested).
_TRACE_SIZE = (72, 88)


class WeightsFormat(StrEnum):
    TORCHSCRIPT = "torchscript"
    LIGHTNING_CHECKPOINT = "lightning-checkpoint"


class WeightsError(ValueError):
    """A weights file is unreadable, of an unknown format, or does not fit the architecture."""


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def detect_format(path: Path) -> WeightsFormat:
    """TorchScript archives hold compiled code (`<archive>/code/…`); checkpoints do not."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            if any("/code/" in name or name.startswith("code/") for name in archive.namelist()):
                return WeightsFormat.TORCHSCRIPT
    return WeightsFormat.LIGHTNING_CHECKPOINT


def load_network(path: Path, config: LamaConfig, device: torch.device) -> nn.Module:
    """A module with the `InpaintingNetwork` calling convention, in eval mode on `device`.

    Lightning checkpoints become our native network (which the inpainter can optimise);
    TorchScript files run as they are.
    """
    fmt = detect_format(path)
    if fmt is WeightsFormat.TORCHSCRIPT:
        return load_torchscript(path, device)
    network = InpaintingNetwork(config)
    network.load_state_dict(generator_state_from_checkpoint(read_checkpoint(path)), strict=True)
    return network.to(device).eval()


def load_torchscript(path: Path, device: torch.device) -> torch.jit.ScriptModule:
    try:
        module = torch.jit.load(str(path), map_location=device)
    except RuntimeError as exc:
        raise WeightsError(f"{path} is not a loadable TorchScript file: {exc}") from exc
    return module.eval()


TORCHSCRIPT_WRAPPER_PREFIX = "model."
"""IOPaint's big-lama.pt traces LaMa's training module inside a wrapper (advimman/lama,
`bin/to_jit.py`), so its generator's tensors are ``model.generator.*``; ours are
``generator.*``."""


def native_network_from_torchscript(
    module: torch.jit.ScriptModule, config: LamaConfig
) -> InpaintingNetwork | None:
    """Our network holding a TorchScript file's tensors, or None when they do not fit.

    Fitting is necessary, not sufficient: a file can hold the same tensors and compute
    something else, so the loader compares both networks' outputs before using this one.
    """
    state = {key: value.detach().to("cpu") for key, value in module.state_dict().items()}
    if state and all(key.startswith(TORCHSCRIPT_WRAPPER_PREFIX) for key in state):
        state = {
            key.removeprefix(TORCHSCRIPT_WRAPPER_PREFIX): value for key, value in state.items()
        }
    generator = {key: value for key, value in state.items() if key.startswith(GENERATOR_PREFIX)}
    network = InpaintingNetwork(config)
    try:
        network.load_state_dict(generator, strict=True)
    except RuntimeError:
        return None
    return network.eval()


def read_export_metadata(path: Path) -> dict[str, Any] | None:
    """What our export recorded in a TorchScript file; None for files made elsewhere."""
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if name.endswith(f"/extra/{EXPORT_METADATA_FILE}"):
                return dict(json.loads(archive.read(name)))
    return None


def read_checkpoint(path: Path) -> Mapping[str, Any]:
    """The top-level dict of a torch-saved checkpoint, without running code from it.

    Lightning checkpoints also pickle hyper-parameters and callback state whose classes
    (OmegaConf, Lightning) we neither have nor need. `torch.load(weights_only=True)` refuses
    them, and `weights_only=False` would execute whatever the pickle names; instead every
    class outside a small tensor allowlist is replaced by an inert placeholder.
    """
    try:
        loaded = torch.load(
            path, map_location="cpu", weights_only=False, pickle_module=_InertPickleModule
        )
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile) as exc:
        raise WeightsError(f"{path} is not a readable checkpoint: {exc}") from exc
    if not isinstance(loaded, Mapping):
        raise WeightsError(f"{path} does not hold a checkpoint dict ({type(loaded).__name__})")
    return loaded


def generator_state_from_checkpoint(checkpoint: Mapping[str, Any]) -> dict[str, Tensor]:
    """The `generator.*` tensors of a Lightning checkpoint, keys kept as they are.

    `InpaintingNetwork` keeps its generator under `generator`, so these keys are its own;
    discriminator, loss and optimiser entries are left out.
    """
    state = checkpoint.get("state_dict", checkpoint)
    if not isinstance(state, Mapping):
        raise WeightsError("checkpoint has no state_dict mapping")
    generator = {key: value for key, value in state.items() if key.startswith(GENERATOR_PREFIX)}
    if not generator:
        raise WeightsError("checkpoint has no `generator.*` weights: not a LaMa checkpoint")
    return generator


def export_torchscript(
    network: InpaintingNetwork, path: Path, *, metadata: Mapping[str, Any] | None = None
) -> None:
    """Write `network` as a traced TorchScript file in IOPaint's calling convention.

    The file is traced on CPU in float32 and written atomically (temp file + rename).
    """
    network = network.to("cpu").float().eval()
    generator = torch.Generator().manual_seed(0)
    image = torch.rand((1, 3, *_TRACE_SIZE), generator=generator)
    mask = (torch.rand((1, 1, *_TRACE_SIZE), generator=generator) > 0.5).float()
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        # Only the deprecation notice of torch.jit itself is expected; tracer warnings about
        # data-dependent control flow stay errors under pytest and visible elsewhere.
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.trace.* is deprecated")
        # check_trace would run the network twice more to compare; the tests compare the
        # export against the eager network at several sizes instead.
        traced = torch.jit.trace(network, (image, mask), check_trace=False)
    extra = {
        EXPORT_METADATA_FILE: json.dumps(
            {"config": network.config.name, **(metadata or {})}, sort_keys=True
        )
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkstemp: its 0600 mode would survive the rename, and the exported file
    # is meant to be shared (IOPaint's cache, other users).
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        torch.jit.save(traced, str(temporary), _extra_files=extra)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def random_network(
    config: LamaConfig, seed: int, *, weight_scale: float = 1.0
) -> InpaintingNetwork:
    """A randomly initialised network, the same for the same seed, leaving torch's RNG as is.

    `weight_scale` multiplies every convolution's He-initialised weights. Through big-lama's
    18 residual blocks unscaled weights drive the sigmoid to exactly 0 or 1, where two
    implementations agree whatever their differences; 0.5 spreads the output over (0, 1),
    so comparisons of outputs mean something. The tiny config needs no scaling.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = InpaintingNetwork(config)
        for module in network.modules():
            if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
                # He initialisation: with PyTorch's default the tiny test network's output
                # hardly depends on its input (std 0.01), which would let bugs pass tests.
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                with torch.no_grad():
                    module.weight.mul_(weight_scale)
            if isinstance(module, nn.BatchNorm2d):
                # Non-trivial statistics, so that tests notice them being dropped.
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return network.eval()


class _InertObject:
    """Stands in for any pickled object whose class is not on the allowlist."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.args = args

    def __setstate__(self, state: object) -> None:
        self.state = state

    def __setitem__(self, key: object, value: object) -> None:
        """Dict subclasses are rebuilt item by item."""

    def append(self, item: object) -> None:
        """List subclasses are rebuilt item by item."""

    def extend(self, items: object) -> None:
        """List subclasses are rebuilt item by item."""


class _InertUnpickler(pickle.Unpickler):
    """Resolves tensors and plain containers; every other class becomes `_InertObject`."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        if module == "torch" and name.endswith("Storage"):
            return super().find_class(module, name)
        return _InertObject


_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch._utils", "_rebuild_parameter"),
    ("torch._utils", "_rebuild_parameter_with_state"),
    ("torch", "Size"),
    ("torch", "device"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
}


class _InertPickleModule:
    """The `pickle_module` torch.load expects: `Unpickler` and `load` are all it uses."""

    Unpickler = _InertUnpickler

    @staticmethod
    def load(file: Any, **kwargs: Any) -> Any:
        return _InertUnpickler(file, **kwargs).load()
