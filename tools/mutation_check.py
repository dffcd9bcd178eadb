"""Mutation check: do the tests catch one-line bugs? (issue #19's "tests that can fail").

Two parts, each on a scratch copy of the checkout (the checkout itself is never
modified; the copy keeps the build folder and the compiled kernels, so only a
mutated kernel module is rebuilt):

1. ``--python``: mutmut (https://github.com/boxed/mutmut, 3.x) over the core
   Python modules in PY_SCOPE, running only the tests listed there (mutmut then
   picks, per mutant, the tests that call the mutated function). Reports mutants
   killed / survived / not reached by the selected tests, and lists survivors
   (``mutmut show <name>`` in the copy prints one's diff).
2. ``--kernels``: the hand mutations of the Cython kernels in KERNEL_MUTANTS
   (a realistic one-line bug each), applied one at a time, the kernels rebuilt
   in the copy, the listed tests run: a mutant is killed when they fail.

    python tools/mutation_check.py --python             # 29 min at load 14 on 2 cores
    python tools/mutation_check.py --kernels --only 3   # one kernel mutant (two rebuilds)
    python tools/mutation_check.py --python --kernels --keep /tmp/mut   # keep the copy

Needs ``pip install mutmut`` for the first part. Not run in CI (too slow); run it
after changing a core module or its tests, and add a test for each survivor
that is a real bug (some mutants are equivalent: a changed default never used,
a message's wording).
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


def python_part(copy, jobs):
    tests = sorted({t for ts in PY_SCOPE.values() for t in ts} | {"tests/conftest.py"})
    with open(os.path.join(copy, "pyproject.toml"), "a") as f:
        f.write("\n[tool.mutmut]\n"
                f"paths_to_mutate = {json.dumps(sorted(PY_SCOPE))}\n"
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
    print(f"\nmutmut over {', '.join(PY_SCOPE)} ({time.time() - start:.0f} s): {counts}")
    print(f"kill rate among mutants the selected tests reach: {killed}/{tested} = "
          f"{killed / max(tested, 1):.1%}")
    for name in survivors:
        print("  survived:", name)
    return killed, tested


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
            b = run([sys.executable, "setup.py", "build_ext", "--inplace", "-j", "2"], copy)
            if b.returncode != 0:
                print(f"  [build failed] {path}: {new.strip()}")
                continue
            t = run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                     "-m", "not slow"] + tests, copy, env=env)
            caught = t.returncode not in (0, 5)  # failed, errored or crashed: caught
            killed += caught
            print(f"  [{'killed' if caught else 'SURVIVED'}] {path}: {old.strip()!r} -> "
                  f"{new.strip()!r} ({time.time() - start:.0f} s)")
        finally:
            with open(file, "w") as f:
                f.write(text)
    if restore:  # leave a kept copy's kernels as the checkout's
        run([sys.executable, "setup.py", "build_ext", "--inplace", "-j", "2"], copy)
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
            python_part(copy, args.jobs)
    finally:
        if not args.keep:
            shutil.rmtree(copy, ignore_errors=True)


if __name__ == "__main__":
    main()
