"""The benchmark suite's machinery (bench/conftest.py) and the README's bench
commands: the ratio tables divide the right numbers, a replayed PyTorch
timing records exactly the child's times, and every bench/ path the README
names exists. The end-to-end run of one benchmark file is slow (it starts
PyTorch)."""
import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
pytestmark = pytest.mark.skipif(not os.path.isdir(BENCH),
                                reason="bench/ not beside the tests (installed copy)")


@pytest.fixture(scope="module")
def bench_conftest():
    saved = list(sys.path)
    try:
        spec = importlib.util.spec_from_file_location("fastnn_bench_conftest",
                                                      os.path.join(BENCH, "conftest.py"))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = saved
    return module


RESULTS = [("gemm", "fastnn", 0.002, 0.001), ("gemm", "numpy", 0.004, 0.004),
           ("gemm", "torch", 0.008, 0.002),
           ("epoch", "fastnn:callbacks", 1.5, 1.2), ("epoch", "numpy", 3.0, 2.0)]


def test_markdown_table_divides_fastnn_by_each_reference(bench_conftest):
    rows = bench_conftest.markdown_table(RESULTS)
    assert rows[2] == "| gemm | fastnn | 2 | 0.50 (0.25) | 0.25 (0.50) |"
    assert rows[3] == "| epoch | fastnn:callbacks | 1500 | 0.50 (0.60) | n/a |"
    assert len(rows) == 4  # header, rule, one row per fastnn way: references have none


def test_terminal_table_has_a_row_per_fastnn_way(bench_conftest):
    lines = bench_conftest.ratio_table(RESULTS)
    assert len(lines) == 3
    assert lines[1].split()[-4:] == ["0.500", "(0.250)", "0.250", "(0.500)"]
    assert lines[2].split()[-3:] == ["0.500", "(0.600)", "n/a"]


def test_replay_clock_advances_by_each_measured_time(bench_conftest):
    clock = bench_conftest.ReplayClock([0.25, 0.5])
    spans = []
    for _ in range(2):
        start = clock()
        clock.advance()
        spans.append(clock() - start)
    assert spans == [0.25, 0.5]
    with pytest.raises(StopIteration):
        clock.advance()


def test_rates_come_from_each_step_s_work_and_median(bench_conftest):
    info = {"gflop": 3.0, "gbytes": 0.5, "peak_mib": 12.5}
    assert bench_conftest.record_rates(info, 0.25) == (12.0, 2.0, 12.5)
    assert info["gflops_per_s"] == 12.0 and info["gbytes_per_s"] == 2.0
    # A rate the test set itself is kept; a benchmark recording nothing has none.
    assert bench_conftest.record_rates({"gflop": 1.0, "gflops_per_s": 7.0}, 0.5) == \
        (7.0, None, None)
    assert bench_conftest.record_rates({"way": "torch"}, 0.5) is None
    rates = [("pool", "fastnn", None, 20.0, 8.0), ("pool", "torch", None, 10.0, None)]
    lines = bench_conftest.rate_table(rates)
    assert lines[1].split()[-3:] == ["-", "20.0", "8.0"]
    assert lines[2].split()[-3:] == ["-", "10.0", "-"]
    assert bench_conftest.markdown_rate_table(rates)[2:] == [
        "| pool | fastnn | - | 20.0 | 8.0 |", "| pool | torch | - | 10.0 | - |"]


def test_cnn_metrics_count_the_work_by_hand():
    saved = list(sys.path)
    sys.path.insert(0, BENCH)
    try:
        import _metrics
    finally:
        sys.path[:] = saved
    # 32 images of 32x32x64, 3x3: forward, dW and dx each 2 * 32*32*32*64*9 FLOP.
    assert _metrics.depthwise_flops() == 3 * 2 * 32 * 32 * 32 * 64 * 9
    assert _metrics.depthwise_flops(2) == 2 * _metrics.depthwise_flops()
    x = 32 * 32 * 32 * 64 * 4
    assert _metrics.depthwise_bytes() == 5 * x
    assert _metrics.maxpool_bytes() == 3 * x
    assert _metrics.batchnorm_bytes() == 5 * x
    # Per image: conv1 26*26*9*1*32 and conv2 11*11*9*32*64 multiply-adds, the
    # Dense 1600*10; forward + dW (conv1), + dx (conv2, Dense).
    per_image = 2 * (26 * 26 * 9 * 32 * 2 + 11 * 11 * 9 * 32 * 64 * 3 + 1600 * 10 * 3)
    assert _metrics.cnn_epoch_flops() == per_image * 60000
    assert _metrics.peak_mib(lambda: bytearray(8 * 2 ** 20)) >= 8.0
    info = {}
    calls = []
    traced = _metrics.traced_first_call(lambda: calls.append(bytearray(2 ** 20)), info)
    traced(), traced()
    assert len(calls) == 2 and info["peak_mib"] >= 1.0


def test_readme_bench_paths_exist():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        paths = set(re.findall(r"bench/[\w./-]*\w", f.read()))
    assert paths, "the README names no bench/ file"
    missing = sorted(p for p in paths if not os.path.exists(os.path.join(ROOT, p)))
    assert not missing, f"README names bench/ paths that do not exist: {missing}"


@pytest.mark.slow
def test_one_benchmark_file_end_to_end(tmp_path):
    """bench/test_bench_gemm.py for one shape: every way lands in one group,
    the PyTorch way with the child's times and where they came from, and the
    machine info names the CPU and the load."""
    out = tmp_path / "run.json"
    # The fastnn under test (installed in CI), from a neutral folder: at the
    # repository root `python -m` would import the uncompiled sources.
    import fastnn
    under_test = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))
    env = dict(os.environ, PYTHONPATH=under_test + os.pathsep + os.environ.get("PYTHONPATH", ""),
               FASTNN_BENCH_MARKDOWN=str(tmp_path / "ratios.md"))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", os.path.join(BENCH, "test_bench_gemm.py"), "-k",
         "128x784x256", "--benchmark-only", "--benchmark-max-time=0.05", "-p",
         "no:cacheprovider", f"--rootdir={ROOT}", f"--benchmark-json={out}"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "fastnn / reference" in proc.stdout
    run = json.loads(out.read_text())
    assert run["machine_info"]["cpu_model"] and "load_average" in run["machine_info"]
    by_way = {b["extra_info"]["way"]: b for b in run["benchmarks"]}
    assert {b["group"] for b in run["benchmarks"]} == {"gemm 128x784x256"}
    assert {"fastnn", "numpy"} <= set(by_way)
    if "torch" in by_way:
        torch_run = by_way["torch"]
        assert "PyTorch child process" in torch_run["extra_info"]["timed_in"]
        assert torch_run["stats"]["rounds"] >= 5 and 0 < torch_run["stats"]["min"] < 1
        assert "| gemm 128x784x256 | fastnn |" in (tmp_path / "ratios.md").read_text()
