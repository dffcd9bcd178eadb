"""What the sparse kernel tests share (tests/recsys/test_sparse_kernels.py,
tests/recsys/test_autorec_step_kernel.py): the index and float dtypes they
run over, their tolerance, and random CSR inputs with the awkward rows.

Imported by name: tests/conftest.py puts this folder on ``sys.path``."""
import numpy as np
import scipy.sparse as sp

INDEX = [np.int32, np.int64]
FLOAT = [np.float32, np.float64]
#: Adam's settings for the fused AutoRec step (autorec_adam_step's keywords).
ADAM = dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8)


def tol(dtype):
    return dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


def random_csr(n, m, rng, dtype=np.float32, index=np.int32, density=0.2, unsorted=False):
    """Random CSR with an empty row, a one-entry row and a full (long) row."""
    A = sp.random(n, m, density=density, format="lil", random_state=rng, dtype=np.float64)
    if n >= 3 and m >= 1:
        A[0, :] = 0
        A[1, :] = 0
        A[1, m // 2] = 1.5
        A[2, :] = rng.standard_normal(m)
    A = A.tocsr()
    A.sort_indices()
    indptr = A.indptr.astype(index)
    indices = A.indices.astype(index)
    data = A.data.astype(dtype)
    if unsorted:  # reverse each row's entries: the kernels must reject this
        for i in range(n):
            s = slice(indptr[i], indptr[i + 1])
            indices[s] = indices[s][::-1].copy()
            data[s] = data[s][::-1].copy()
    return indptr, indices, data, sp.csr_matrix((data, indices, indptr), shape=(n, m))
