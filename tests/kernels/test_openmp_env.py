"""How fastnn sets up its OpenMP runtime's waiting (fastnn/_C/__init__.py):
PASSIVE with a short spin unless the user chose a policy. Each case runs in a
fresh interpreter, because the runtime reads the environment once, when it loads."""
import json
import os
import subprocess
import sys

import pytest

PROBE = ("import os, json, fastnn._C.sparse; "
         "print(json.dumps({k: os.environ.get(k) for k in ('OMP_WAIT_POLICY', 'GOMP_SPINCOUNT')}))")


def _env_after_import(**set_vars):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(set_vars)
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.abspath(__file__)), check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_default_is_passive_with_a_short_spin():
    assert _env_after_import() == {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "1000"}


@pytest.mark.parametrize("policy", ["ACTIVE", "PASSIVE"])
def test_an_explicit_policy_wins_and_nothing_is_added(policy):
    assert _env_after_import(OMP_WAIT_POLICY=policy) == {"OMP_WAIT_POLICY": policy,
                                                         "GOMP_SPINCOUNT": None}


def test_an_explicit_spin_count_wins():
    assert _env_after_import(GOMP_SPINCOUNT="0") == {"OMP_WAIT_POLICY": "PASSIVE",
                                                     "GOMP_SPINCOUNT": "0"}
