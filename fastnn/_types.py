"""Type aliases of the public API's annotations (for mypy and the reader);
nothing here runs. Kept apart so every module spells a type the same way."""
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

__all__ = ["Any", "ArrayIn", "ArrayLike", "DTypeLike", "Array", "BackendLike", "Callable",
           "Data", "Dict", "Iterable", "Iterator", "List", "Logs", "Mapping", "Optional",
           "Sequence", "Shape", "Tuple", "Union"]
