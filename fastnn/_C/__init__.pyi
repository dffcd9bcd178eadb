# Type stub for the compiled Cython kernels (extension modules mypy cannot
# read): each kernel module, and what it holds, is typed as Any. The kernels
# check their arguments at run time (csrc/common/checks.pxd).
from typing import Any

def __getattr__(name: str) -> Any: ...
