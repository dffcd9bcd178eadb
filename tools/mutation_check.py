"""Mutation check: do the tests catch one-line bugs? (issue #19's "tests that can fail").

Two parts, each on a scratch copy of the checkout (the checkout itself is never
modified; the copy keeps the compiled kernels, and only the mutated kernel
module is rebuilt, with setup.py's FASTNN_ONLY):

1. ``--python``: mutmut (https://github.com/boxed/mutmut, 3.x) over the core
   Python modules in PY_SCOPE (``--modules`` picks some), running only the
   tests listed there (mutmut then picks, per mutant, the tests that call the
   mutated function). Reports mutants killed / survived, the kill rate with and
   without the survivors listed in EQUIVALENT (checked by hand: they cannot
   change what a caller observes, each with its reason), and lists survivors
   (``mutmut show <name>`` in the copy prints one's diff).
2. ``--kernels``: the hand mutations of the Cython kernels in KERNEL_MUTANTS
   (a realistic one-line bug each), applied one at a time, the module rebuilt
   in the copy, the listed tests run: a mutant is killed when they fail (the
   first failing test is printed, to tell a wrong value from a broken build).

    python tools/mutation_check.py --python             # 7 min at load 7 on 2 cores, 18 at 11
    python tools/mutation_check.py --python --modules fastnn/losses.py   # one module
    python tools/mutation_check.py --kernels --only 7   # one kernel mutant (two rebuilds)
    python tools/mutation_check.py --python --kernels --keep /tmp/mut   # keep the copy

Needs ``pip install mutmut`` for the first part. Not run in CI (too slow); run it
after changing a core module or its tests, add a test for each survivor that
is a real bug (a test of what a user relies on: a value, a dtype, a message, a
boundary), and list the equivalent ones in EQUIVALENT with the reason.
Last figures: tests/README.md, "Mutation check".
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Module -> the tests meant to catch bugs in it. Kept to the modules that judge
# other code (the gradient check, the comparison helpers, the losses); widen it
# when time allows (each module costs minutes).
PY_SCOPE = {
    "fastnn/gradcheck.py": ["tests/test_gradcheck.py", "tests/test_losses.py",
                            "tests/test_graph.py", "tests/layers/test_masking.py"],
    "fastnn/testing.py": ["tests/test_testing.py", "tests/layers/test_core.py",
                          "tests/kernels/test_activations.py"],
    "fastnn/losses.py": ["tests/test_losses.py", "tests/test_gradcheck.py",
                         "tests/layers/test_masking.py"],
}

# Surviving mutants checked by hand that cannot change what a caller can observe,
# each with the reason. The kill rate is reported with and without them. A name
# is mutmut's (module.x_function__mutmut_N): N counts the mutants of that one
# function, so an edit elsewhere in the module keeps it, an edit of the function
# renumbers it; a stale entry merely stops matching (it is listed as unmatched).
_KINK = "the clip's kink: either one-sided derivative is a valid subgradient"
_COPY = "astype(copy=...) of a fresh temporary: a copy or not, nothing else holds it"
_NEG = "NumPy's reshape takes any negative size as the one to infer, as -1"
EQUIVALENT = {
    # fastnn/gradcheck.py
    "fastnn.gradcheck.x__directional_check__mutmut_11": "v *= |v| instead of /=: a longer "
    "direction, used on both sides of the comparison (only the step grows)",
    "fastnn.gradcheck.x__directional_check__mutmut_17": "the norm floor 1e-300 -> 1.0: an "
    "unnormalised direction, used on both sides of the comparison",
    "fastnn.gradcheck.x__directional_check__mutmut_20": "the direction's dtype: the array "
    "checked is float64 (required), asarray's default",
    "fastnn.gradcheck.x__directional_check__mutmut_22": "as _20",
    "fastnn.gradcheck.x__check_layer__mutmut_43": "checked[key] = None instead of False: "
    "both falsy, read only as a flag",
    "fastnn.gradcheck.x__check_layer__mutmut_84": "seed + 2 instead of + 1: other random "
    "output gradients, as good as the first",
    "fastnn.gradcheck.x__check_layer__mutmut_105": "dkw = None: reassigned before any use",
    # fastnn/testing.py
    "fastnn.testing.x_run_layer_test__mutmut_52": "make_layer(None): a layer's default dtype "
    "is float32, the dtype asked for",
    "fastnn.testing.x_run_layer_test__mutmut_57": "the symbolic Input's dtype: a symbolic call "
    "reads only shapes",
    "fastnn.testing.x_run_layer_test__mutmut_59": "the symbolic Input's dtype (as _57)",
    "fastnn.testing.x_run_layer_test__mutmut_61": "the symbolic Input's dtype (as _57)",
    "fastnn.testing.x_run_layer_test__mutmut_62": "the symbolic Input's dtype (as _57)",
    "fastnn.testing.x_run_layer_test__mutmut_65": "the symbolic Input's dtype (as _57)",
    "fastnn.testing.x_run_layer_test__mutmut_66": "the symbolic Input's dtype (as _57)",
    "fastnn.testing.x_run_layer_test__mutmut_67": "the symbolic Input's dtype (as _57)",
    "fastnn.testing.x_run_layer_test__mutmut_75": "a one-element list of tensors is taken as "
    "the tensor by a single-input layer's symbolic call",
    "fastnn.testing.x_make__mutmut_1": "the default layout's name: any name but 'strided' and "
    "'F' is C order",
    "fastnn.testing.x_make__mutmut_2": "the default layout's name (as _1)",
    "fastnn.testing.x_make__mutmut_23": "an internal assert that cannot fire either way (a "
    "strided array of 2 elements is not C-contiguous)",
    "fastnn.testing.x_assert_close__mutmut_20": "astype(None) is float64, as asked",
    "fastnn.testing.x_assert_close__mutmut_36": "astype(None) is float64, as asked",
    # fastnn/losses.py
    "fastnn.losses.x__sample_weight__mutmut_19": _NEG,
    "fastnn.losses.xǁLossǁ_masked__mutmut_21": _NEG,
    "fastnn.losses.xǁLossǁ_masked__mutmut_42": "the mask's count summed as an integer, not "
    "float64: the same count",
    "fastnn.losses.xǁLossǁper_sample__mutmut_13": _NEG,
    "fastnn.losses.xǁMeanSquaredLogarithmicErrorǁelementwise__mutmut_23": _KINK,
    "fastnn.losses.xǁMeanSquaredLogarithmicErrorǁelementwise__mutmut_26": _COPY,
    "fastnn.losses.xǁMeanSquaredLogarithmicErrorǁelementwise__mutmut_28": _COPY,
    "fastnn.losses.xǁMeanSquaredLogarithmicErrorǁelementwise__mutmut_29": _COPY,
    "fastnn.losses.xǁHingeǁelementwise__mutmut_8": "the hinge's kink (margin exactly 0): "
    "either one-sided derivative is a valid subgradient",
    "fastnn.losses.xǁHingeǁelementwise__mutmut_12": _COPY,
    "fastnn.losses.xǁHingeǁelementwise__mutmut_14": _COPY,
    "fastnn.losses.xǁHingeǁelementwise__mutmut_17": _COPY,
    "fastnn.losses.xǁKLDivergenceǁ_loss_and_grad__mutmut_31": _KINK,
    "fastnn.losses.xǁKLDivergenceǁ_loss_and_grad__mutmut_32": _KINK,
    "fastnn.losses.xǁKLDivergenceǁ_loss_and_grad__mutmut_35": _COPY,
    "fastnn.losses.xǁKLDivergenceǁ_loss_and_grad__mutmut_37": _COPY,
    "fastnn.losses.xǁKLDivergenceǁ_loss_and_grad__mutmut_38": _COPY,
    "fastnn.losses.xǁSparseCategoricalCrossentropyǁ_labels__mutmut_2": "the backend of "
    "labels and predictions: they share one (mixing backends is refused elsewhere)",
    "fastnn.losses.xǁSparseCategoricalCrossentropyǁ_labels__mutmut_4": "as _labels__mutmut_2",
    "fastnn.losses.xǁSparseCategoricalCrossentropyǁ_labels__mutmut_39": "'XXiubXX' instead of "
    "'iub': no dtype kind is 'X'",
    "fastnn.losses.xǁLossǁ_prepare__mutmut_3": "ops_for(y_pred, None): the predictions pick "
    "the backend either way (host targets follow them)",
    "fastnn.losses.xǁLossǁ_prepare__mutmut_5": "as _prepare__mutmut_3",
    "fastnn.losses.xǁCategoricalCrossentropyǁ_prepare__mutmut_3": "as Loss._prepare__mutmut_3",
    "fastnn.losses.xǁCategoricalCrossentropyǁ_prepare__mutmut_5": "as Loss._prepare__mutmut_3",
    "fastnn.losses.xǁLossǁforward_backward__mutmut_29": _NEG,
    "fastnn.losses.xǁCategoricalCrossentropyǁ_flat__mutmut_9": _NEG,
    "fastnn.losses.xǁCategoricalCrossentropyǁ_flat__mutmut_15": _NEG,
    "fastnn.losses.xǁCategoricalCrossentropyǁ_flat__mutmut_21": _NEG,
    "fastnn.losses.xǁCategoricalCrossentropyǁ_prob_loss__mutmut_18": "axis +1 for -1: "
    "_prob_loss works on the (rows, classes) view, where axis 1 is the last",
    "fastnn.losses.xǁCategoricalCrossentropyǁ_prob_loss__mutmut_36": "as _prob_loss__mutmut_18",
    "fastnn.losses.xǁCategoricalCrossentropyǁ_prob_loss__mutmut_48": "as _prob_loss__mutmut_18",
}

# (file, exact original text, mutated text, tests). Each original must occur once.
KERNEL_MUTANTS = [
    ("csrc/dense.pyx", "                db[j] += <floating>s",
     "                db[j] = <floating>s",  # db overwritten, not accumulated
     ["tests/kernels/test_dense.py", "tests/fuzz/test_fuzz_dense.py"]),
    ("csrc/sparse.pyx", "            acc[indices[p]] += vals[p]",
     "            acc[indices[p]] = vals[p]",  # a repeated column keeps its last value
     ["tests/recsys/test_sparse_kernels.py", "tests/fuzz/test_fuzz_sparse.py"]),
    ("csrc/sparse.pyx", "    if bad & 2:\n        starts",
     "    if False:\n        starts",  # unsorted rows accepted
     ["tests/recsys/test_sparse_kernels.py", "tests/fuzz/test_fuzz_sparse.py"]),
    ("csrc/optim.pyx", "                p[i] += mom * vi - lr * gi",
     "                p[i] += vi",  # Nesterov silently plain momentum
     ["tests/kernels/test_optim.py", "tests/fuzz/test_fuzz_optim.py"]),
    ("csrc/activations.pyx", "                        if v > best or v != v:",
     "                        if v >= best or v != v:",  # maxout: last maximum wins
     ["tests/kernels/test_activations.py", "tests/fuzz/test_fuzz_dense.py"]),
    ("csrc/sparse.pyx", "    if _outside(perm, data.shape[0]):",
     "    if False:",  # a bad transpose permutation reaches the kernel again
     ["tests/kernels/test_hostile_calls.py", "tests/fuzz/test_fuzz_sparse.py"]),
    ("csrc/pool.pyx", "            inv = 1.0 / ((i1 - i0) * (j1 - j0))",
     "            inv = 1.0 / (ph * pw)",  # average pooling counts the padded cells
     ["tests/kernels/test_pool.py", "tests/fuzz/test_fuzz_cnn.py"]),
    ("csrc/pool.pyx", "        dimg[(ih * W + iw) * C + c] += g[c]",
     "        dimg[(ih * W + iw) * C + c] = g[c]",  # overlapping max windows overwrite dx
     ["tests/kernels/test_pool.py", "tests/fuzz/test_fuzz_cnn.py"]),
    ("csrc/norm.pyx", "            mean[j] = <floating>(<double>x[0, j] + mu)",
     "            mean[j] = <floating>mu",  # the shifted-data mean without its shift
     ["tests/kernels/test_norm.py", "tests/fuzz/test_fuzz_cnn.py"]),
    ("csrc/norm.pyx", "            coef[2, j] = <floating>(-g * inv * sdy / m)",
     "            coef[2, j] = 0",  # training dx forgets the mean's dependence on x
     ["tests/kernels/test_norm.py", "tests/fuzz/test_fuzz_cnn.py"]),
]


def copy_tree(dst):
    def ignore(folder, names):
        return [n for n in names if n in (".git", "mutants", "__pycache__", ".hypothesis")
                or n.startswith(".venv")]
    shutil.copytree(ROOT, dst, ignore=ignore, symlinks=True)
    return dst


def run(cmd, cwd, env=None, timeout=None):
    return subprocess.run(cmd, cwd=cwd, env=env, timeout=timeout, capture_output=True,
                          text=True)


def python_part(copy, jobs, modules=None):
    scope = {m: PY_SCOPE[m] for m in (modules or PY_SCOPE)}
    tests = sorted({t for ts in scope.values() for t in ts} | {"tests/conftest.py"})
    with open(os.path.join(copy, "pyproject.toml"), "a") as f:
        f.write("\n[tool.mutmut]\n"
                f"paths_to_mutate = {json.dumps(sorted(scope))}\n"
                f"tests_dir = {json.dumps(tests)}\n"
                'also_copy = ["fastnn", "tests"]\n'
                'pytest_add_cli_args = ["-p", "no:cacheprovider", "-x", "-q"]\n')
    start = time.time()
    r = run([sys.executable, "-m", "mutmut", "run", "--max-children", str(jobs)], copy)
    if r.returncode != 0:
        print(r.stdout[-3000:], r.stderr[-3000:])
        raise SystemExit("mutmut run failed")
    res = run([sys.executable, "-m", "mutmut", "results", "--all", "true"], copy)
    counts, survivors = {}, []
    for line in res.stdout.splitlines():
        if ":" not in line:
            continue
        name, status = (s.strip() for s in line.rsplit(":", 1))
        counts[status] = counts.get(status, 0) + 1
        if status == "survived":
            survivors.append(name)
    killed = counts.get("killed", 0)
    tested = killed + counts.get("survived", 0) + counts.get("timeout", 0)
    equivalent = [n for n in survivors if n in EQUIVALENT]
    print(f"\nmutmut over {', '.join(scope)} ({time.time() - start:.0f} s): {counts}")
    print(f"kill rate among mutants the selected tests reach: {killed}/{tested} = "
          f"{killed / max(tested, 1):.1%}; without the {len(equivalent)} equivalent ones "
          f"(EQUIVALENT): {killed}/{tested - len(equivalent)} = "
          f"{killed / max(tested - len(equivalent), 1):.1%}")
    for name in survivors:
        print("  survived:", name, f"(equivalent: {EQUIVALENT[name]})" if name in EQUIVALENT
              else "")
    stale = [n for n in EQUIVALENT if n.split(".x")[0].replace(".", "/") + ".py" in scope
             and n not in survivors]
    for name in stale:  # killed now, or renumbered by an edit of its function
        print("  EQUIVALENT entry not among the survivors:", name)
    return killed, tested


def _only(path):
    """Build only the mutated module (setup.py's FASTNN_ONLY): the copy holds the
    compiled kernels but no build folder, so a full build would recompile all."""
    return dict(os.environ, FASTNN_ONLY=os.path.splitext(os.path.basename(path))[0])


def kernel_part(copy, only=None, restore=True):
    env = dict(os.environ, PYTHONPATH=copy)
    killed = 0
    chosen = [m for i, m in enumerate(KERNEL_MUTANTS) if only is None or i in only]
    for path, old, new, tests in chosen:
        file = os.path.join(copy, path)
        text = open(file).read()
        assert text.count(old) == 1, (path, old)
        start = time.time()
        with open(file, "w") as f:
            f.write(text.replace(old, new))
        try:
            b = run([sys.executable, "setup.py", "build_ext", "--inplace", "-j", "2"], copy,
                    env=_only(path))
            if b.returncode != 0:
                print(f"  [build failed] {path}: {new.strip()}")
                continue
            t = run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                     "-m", "not slow"] + tests, copy, env=env)
            caught = t.returncode not in (0, 5)  # failed, errored or crashed: caught
            killed += caught
            print(f"  [{'killed' if caught else 'SURVIVED'}] {path}: {old.strip()!r} -> "
                  f"{new.strip()!r} ({time.time() - start:.0f} s)")
            # What caught it: a failing test (not an import error) is a real kill.
            why = [ln for ln in t.stdout.splitlines() if ln.startswith(("FAILED", "ERROR"))]
            if caught:
                print("      ", why[0][:200] if why else t.stdout.strip()[-200:])
        finally:
            with open(file, "w") as f:
                f.write(text)
    if restore:  # leave a kept copy's kernels as the checkout's
        for path in sorted({m[0] for m in chosen}):
            run([sys.executable, "setup.py", "build_ext", "--inplace", "-j", "2"], copy,
                env=_only(path))
    print(f"kernel mutants killed: {killed}/{len(chosen)}")
    return killed, len(chosen)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--python", action="store_true", help="mutmut over PY_SCOPE")
    p.add_argument("--kernels", action="store_true", help="the hand mutations of csrc/")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--keep", default=None, help="folder for the copy (kept afterwards)")
    p.add_argument("--only", type=int, nargs="*", default=None,
                   help="indices into KERNEL_MUTANTS (default: all)")
    p.add_argument("--modules", nargs="*", default=None, choices=sorted(PY_SCOPE),
                   help="mutate only these PY_SCOPE modules (default: all)")
    args = p.parse_args()
    if not (args.python or args.kernels):
        args.python = args.kernels = True
    copy = args.keep or tempfile.mkdtemp(prefix="fastnn-mutation-")
    if os.path.exists(copy) and os.listdir(copy):
        raise SystemExit(f"{copy} is not empty")
    os.rmdir(copy) if os.path.isdir(copy) else None
    copy_tree(copy)
    print("scratch copy:", copy)
    try:
        if args.kernels:
            kernel_part(copy, args.only, restore=bool(args.keep))
        if args.python:
            python_part(copy, args.jobs, args.modules)
    finally:
        if not args.keep:
            shutil.rmtree(copy, ignore_errors=True)


if __name__ == "__main__":
    main()
