"""Type aliases of the public API's annotations (for mypy and the reader);
nothing here runs. Kept apart so every module spells a type the same way."""
import os
from typing import (Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence,
                    Tuple, Union)

from numpy.typing import ArrayLike, DTypeLike

# What fit/evaluate/predict take: an array, a list or dict of arrays (one per
# model input/output), or a source of batches (a fastnn.utils.Sequence, a
# generator, any iterable). Checked at run time, with errors naming the input.
Data = Any
# A per-sample shape, batch axis excluded (None: a size unknown until called).
Shape = Tuple[Optional[int], ...]
# A backend: a registered name ("numpy", "reference", "strict", ...) or an Ops.
BackendLike = Union[str, Any]
# Logs handed to callbacks: name -> value.
Logs = Dict[str, Any]
# An array argument: anything numpy.asarray takes, or an array of a device
# backend (CuPy), which numpy.typing.ArrayLike does not cover; checked at run time.
ArrayIn = Any
# An array on some backend (numpy.ndarray on the CPU, a device array on a GPU).
Array = Any
# Layer argument specs, resolved by fastnn.activations.get / initializers.get /
# regularizers.get / constraints.get: a registered name, a config dict, an
# instance or function (callable), or None where the argument is optional.
ActivationSpec = Union[str, Tuple[str, float], Callable[..., Any], None]
InitializerSpec = Union[str, Dict[str, Any], Callable[..., Any]]
RegularizerSpec = Union[str, Dict[str, Any], Callable[..., Any], None]
ConstraintSpec = Union[str, Dict[str, Any], Callable[..., Any], None]
# A window argument (kernel_size, strides, pool_size, ...): one int for every
# spatial axis, or one per axis.
IntOrTuple = Union[int, Sequence[int]]
# A file path.
PathIn = Union[str, os.PathLike[str]]
# A padding or cropping amount: one int, one per axis, or (before, after) per axis.
PadSpec = Union[int, Sequence[int], Sequence[Sequence[int]]]

__all__ = ["Any", "ArrayIn", "ArrayLike", "DTypeLike", "Array", "BackendLike", "Callable",
           "Data", "Dict", "Iterable", "Iterator", "List", "Logs", "Mapping", "Optional",
           "Sequence", "Shape", "Tuple", "Union",
           "ActivationSpec", "ConstraintSpec", "InitializerSpec", "IntOrTuple", "PadSpec",
           "PathIn", "RegularizerSpec"]
