"""Which copy of a model runs: fp32, or its int8 copy where this CPU runs int8 faster.

``snca export --int8`` writes ``STEM.int8.onnx`` beside ``STEM.onnx`` (the shipped model has
one too). ``--precision auto`` (the default of every command that embeds tiles) takes the int8
copy when one exists, the provider is the CPU and the CPU has int8 dot-product instructions
(x86 VNNI or AMX, Arm's dot product), where onnxruntime's int8 kernels run about twice as fast
as fp32 (``docs/benchmarks.md``); without them int8 can be slower than fp32, so auto keeps fp32.

int8 alone does not give the same answers: on real scenes unlike the training images, about
5 % of the tiles whose two best classes are close change class. So an int8 run **re-checks** in
fp32 every tile whose two best int8 probabilities are less than :data:`RECHECK_MARGIN` apart,
and keeps the fp32 outputs (class and embedding) for those tiles: measured on the demo scene,
the Landsat scene and a mosaic of AID test scenes, at least 99 % of the tiles then get fp32's
class (``benchmarks/precision.py``), while a few to a quarter of the tiles pay the fp32 cost.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

from snca_cli.errors import SncaError

#: What ``--precision`` takes.
PRECISIONS = ("auto", "fp32", "int8")
#: How the int8 copy of ``STEM.onnx`` is named.
INT8_SUFFIX = ".int8.onnx"
#: int8 tiles whose two best class probabilities are closer than this are re-run in fp32.
#: Chosen on AID's validation images at 1x, 2x and 4x coarser resolution (benchmarks/precision.py).
RECHECK_MARGIN = 0.2

#: numpy's names of int8 dot-product instruction sets, and how they are called.
_NUMPY_INT8_FEATURES = {
    "AVX512_SPR": "AMX / AVX-512 VNNI",
    "AVX512VNNI": "AVX-512 VNNI",
    "ASIMDDP": "Arm dot product",
}
#: Linux /proc/cpuinfo flags of int8 dot-product instructions numpy does not name.
_CPUINFO_INT8_FLAGS = {"amx_int8": "AMX", "avx_vnni": "AVX-VNNI"}


@dataclass(frozen=True)
class PrecisionChoice:
    """The copy of a model a run uses.

    Attributes:
        precision: ``fp32`` or ``int8``.
        run_path: the file the session runs.
        check_path: the fp32 file that re-checks close int8 tiles; None for fp32 runs, and for an
            int8 file named without an fp32 copy beside it.
        reason: why, for the run's first line.
    """

    precision: str
    run_path: Path
    check_path: Path | None
    reason: str

    def describe(self) -> str:
        """E.g. ``int8 (auto: this CPU has AVX-512 VNNI; tiles closer than 0.2 re-checked in
        fp32)``."""
        checked = (
            f"; tiles whose two best classes are closer than {RECHECK_MARGIN} re-checked in fp32"
            if self.check_path is not None
            else ""
        )
        return f"{self.precision} ({self.reason}{checked})"

    def record(self) -> dict[str, object]:
        """What outputs record of the run's precision."""
        return {
            "precision": self.precision,
            "file": self.run_path.name,
            "recheck_margin": RECHECK_MARGIN if self.check_path is not None else None,
        }


def int8_copy(path: Path) -> Path:
    """Where the int8 copy of the fp32 model ``path`` lives."""
    return path.with_name(path.name.removesuffix(".onnx") + INT8_SUFFIX)


def is_int8_copy(path: Path) -> bool:
    """Whether ``path`` is named as an int8 copy (``STEM.int8.onnx``)."""
    return path.name.endswith(INT8_SUFFIX)


def fp32_original(path: Path) -> Path:
    """The fp32 model an int8 copy ``STEM.int8.onnx`` was made from: ``STEM.onnx``."""
    return path.with_name(path.name.removesuffix(INT8_SUFFIX) + ".onnx")


def named_precision(path: Path) -> str:
    """The precision of the model file ``path`` itself: for runs that must measure or rebuild
    the file named (``snca evaluate``, ``--init``), never a quicker copy of it."""
    return "int8" if is_int8_copy(path) else "fp32"


def int8_instructions() -> str | None:
    """The int8 dot-product instructions of this CPU (VNNI, AMX, Arm's dot product), or None."""
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__ as features
    for key, name in _NUMPY_INT8_FEATURES.items():
        if features.get(key):
            return name
    if platform.system() == "Linux":
        try:
            flags = set(Path("/proc/cpuinfo").read_text(errors="replace").split())
        except OSError:
            return None
        for flag, name in _CPUINFO_INT8_FLAGS.items():
            if flag in flags:
                return name
    return None


def check_precision(precision: str) -> str:
    """Refuse a ``--precision`` that is not one of :data:`PRECISIONS`."""
    if precision not in PRECISIONS:
        raise SncaError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    return precision


def choose_precision(
    path: Path, requested: str, provider: str, instructions: str | None
) -> PrecisionChoice:
    """The copy of the model ``path`` to run for ``--precision requested`` on ``provider``
    (``CPU``, ``CUDA``, ...) with this CPU's int8 ``instructions`` (:func:`int8_instructions`)."""
    check_precision(requested)
    if is_int8_copy(path):
        return _named_int8(path, requested)
    copy = int8_copy(path)
    if requested == "fp32":
        return PrecisionChoice("fp32", path, None, "--precision fp32")
    if requested == "int8":
        if not copy.is_file():
            raise SncaError(
                f"model {path.name} has no int8 copy {copy.name} beside it; write one with "
                "`snca export --int8`, or use --precision fp32"
            )
        return PrecisionChoice("int8", copy, path, "--precision int8")
    if provider != "CPU":
        return PrecisionChoice("fp32", path, None, f"auto: the {provider} provider runs fp32")
    if not copy.is_file():
        return PrecisionChoice("fp32", path, None, f"auto: no int8 copy {copy.name} beside it")
    if instructions is None:
        return PrecisionChoice(
            "fp32", path, None, "auto: this CPU has no VNNI/AMX int8 instructions"
        )
    return PrecisionChoice("int8", copy, path, f"auto: this CPU has {instructions}")


def _named_int8(path: Path, requested: str) -> PrecisionChoice:
    """The choice for a model named as an int8 copy: int8, re-checked by its fp32 original when
    that lies beside it; ``--precision fp32`` runs the original."""
    original = fp32_original(path)
    check = original if original.is_file() else None
    if requested != "fp32":
        return PrecisionChoice("int8", path, check, "an int8 model file")
    if check is None:
        raise SncaError(
            f"model {path.name} is an int8 copy and its fp32 original {original.name} is not "
            "beside it; name the fp32 model, or use --precision int8"
        )
    return PrecisionChoice("fp32", original, None, "--precision fp32")
