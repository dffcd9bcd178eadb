"""One I-AutoRec training epoch (k = 500, batch 256, Adam 1e-3, L2 1e-3, every
parameter updated every step): fastnn's AutoRec.fit, the dense masked
formulation in NumPy, and the same in PyTorch (autograd, torch.optim.Adam).
On ML-1M-sized synthetic ratings (3,706 items x 6,040 users, 1M ratings,
long-tailed), and on the real MovieLens-100K when u.data is in
$FASTNN_DATA/ml-100k or ~/.cache/fastnn-data/ml-100k.

The ways are compare_autorec.py's ("autorec", "numpy", "torch"): fastnn's
epochs are timed inside one fit by a callback (on_epoch_begin to
on_epoch_end, as a user's long fit runs them; fit's one-off setup is not an
epoch's), then recorded as this benchmark's rounds. One warm-up epoch, then
FASTNN_BENCH_EPOCHS (3) timed epochs each way.

    python -m pytest bench/test_bench_autorec.py --benchmark-only
"""
import pytest

import _data
from compare_autorec import AutoRecClass, NumpyIAutoRec

SIZES = {"ml1m": "I-AutoRec epoch, ML-1M size (synthetic)",
         "ml100k-real": "I-AutoRec epoch, real ML-100K"}


@pytest.fixture(scope="module")
def samples():
    """size -> items x users CSR (I-AutoRec samples), built on first use."""
    cache = {}

    def get(size):
        if size not in cache:
            try:
                cache[size] = _data.autorec_ratings(size).T.tocsr()
            except FileNotFoundError as e:
                pytest.skip(str(e))
            cache[size].sort_indices()
        return cache[size]
    return get


@pytest.mark.parametrize("way", _data.WAYS)
@pytest.mark.parametrize("size", SIZES)
def test_autorec_epoch(benchmark, request, samples, way, size):
    benchmark.group = SIZES[size]
    X = samples(size)
    a = _data.AUTOREC
    hyper = (X, a["k"], a["lam"], a["lr"], a["batch"], a["seed"])
    if way == "torch":
        return request.getfixturevalue("torch_case")("autorec_epoch", epochs=True, size=size)
    if way == "numpy":
        return request.getfixturevalue("epoch_case")(NumpyIAutoRec(*hyper).epoch)
    model = AutoRecClass(*hyper)
    if benchmark.disabled:  # one fit of one epoch, setup included
        benchmark(model.epoch)
        return
    _, seconds = model.timed_epochs(_data.EPOCHS)
    benchmark.extra_info["timed_in"] = "AutoRec.fit, by a callback per epoch, replayed"
    request.getfixturevalue("replay_case")(seconds[1:])  # the first is the warm-up
