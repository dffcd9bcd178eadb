"""The public API keeps its numpydoc docstrings (issue 20, item 4).

Walks the public names of the modules a user imports (their ``__all__``, or the
public classes and functions a module defines when it has none) and fails,
naming each offender, when a public class, function or method has no
docstring, takes parameters but has no ``Parameters`` section, or documents
parameter names that differ from its signature. A class documents its
constructor's parameters in the class docstring (numpydoc's convention); a
class that inherits its constructor needs a docstring, its parameters being
documented on the class that defines the constructor. A
method without a docstring of its own inherits its base's (``inspect.getdoc``),
which must then still match the override's signature.

A small parser of our own rather than ``numpydoc.validate``: it needs no
Sphinx in the test environment, runs in well under a second, and checks exactly
the rule above; numpydoc's validator also enforces dozens of style rules
(summary punctuation, "See Also" ...) this library does not promise.
"""
import importlib
import inspect
import re
from pathlib import Path

import pytest

MODULES = ["fastnn", "fastnn.layers", "fastnn.models", "fastnn.optimizers", "fastnn.losses",
           "fastnn.metrics", "fastnn.callbacks", "fastnn.activations", "fastnn.initializers",
           "fastnn.regularizers", "fastnn.datasets", "fastnn.recsys", "fastnn.utils",
           "fastnn.data", "fastnn.preprocessing", "fastnn.saving"]

_HEADER = re.compile(r"^(\w[\w ]*)\n-{3,}\s*$", re.M)
_PARAM = re.compile(r"^(\*{0,2}\w+(?:\s*,\s*\*{0,2}\w+)*)\s*(?::.*)?$")


def sections(doc):
    """``{title: body}`` of a numpydoc docstring's underlined sections."""
    heads = list(_HEADER.finditer(doc))
    return {m.group(1).strip(): doc[m.end():heads[i + 1].start() if i + 1 < len(heads) else None]
            for i, m in enumerate(heads)}


def documented_params(body):
    """Parameter names of a ``Parameters`` section: unindented ``name : type`` lines."""
    names = []
    for line in body.splitlines():
        if not line.strip() or line[0].isspace():
            continue
        m = _PARAM.match(line.strip())
        if m:
            names += [n.strip().lstrip("*") for n in m.group(1).split(",")]
    return names


def signature_params(func, skip_first):
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):  # a builtin without a signature: nothing to compare
        return []
    names = list(sig.parameters)
    names = names[1:] if skip_first and names else names
    return [n for n in names if not n.startswith("_")]  # private keywords stay undocumented


def problems_of(qualname, func, doc, skip_first=False):
    """What is wrong with ``func``'s docstring ``doc`` (an empty list when nothing)."""
    if not doc or not doc.strip():
        return [f"{qualname}: no docstring"]
    params = signature_params(func, skip_first)
    if not params:
        return []
    secs = sections(doc)
    if "Parameters" not in secs:
        return [f"{qualname}: takes {', '.join(params)} but its docstring has no "
                "Parameters section"]
    documented = documented_params(secs["Parameters"])
    missing = [p for p in params if p not in documented]
    extra = [p for p in documented if p not in params]
    out = []
    if missing:
        out.append(f"{qualname}: parameters not documented: {', '.join(missing)}")
    if extra:
        out.append(f"{qualname}: documents parameters it does not take: {', '.join(extra)}")
    return out


def public_names(module):
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return sorted(n for n, obj in vars(module).items()
                  if not n.startswith("_") and (inspect.isclass(obj) or inspect.isfunction(obj))
                  and getattr(obj, "__module__", None) == module.__name__)


def own_public_methods(cls):
    """Public methods and properties that ``cls`` defines itself, or inherits from
    a private fastnn base (``_Recurrent``, ``_Scaler``: documented nowhere else);
    those of public bases are checked on the base."""
    owners = [cls] + [c for c in cls.__mro__[1:] if c.__name__.startswith("_")
                      and c.__module__.startswith("fastnn")]
    for owner in owners:
        for name, attr in vars(owner).items():
            if name.startswith("_") or inspect.getattr_static(cls, name) is not attr:
                continue  # private, or what cls gets is another class's
            if isinstance(attr, (staticmethod, classmethod)):
                yield name, getattr(cls, name), False
            elif isinstance(attr, property):
                yield name, attr, None
            elif inspect.isfunction(attr):
                yield name, attr, True


def collect_problems():
    seen, problems = set(), []
    for modname in MODULES:
        module = importlib.import_module(modname)
        for name in public_names(module):
            obj = getattr(module, name)
            if inspect.ismodule(obj) or not callable(obj) or id(obj) in seen:
                continue
            seen.add(id(obj))
            qual = f"{modname}.{name}"
            if inspect.isclass(obj):
                if not (getattr(obj, "__module__", "") or "").startswith("fastnn"):
                    continue
                doc = inspect.getdoc(obj) if obj.__dict__.get("__doc__") else None
                init = obj.__dict__.get("__init__")
                if init is None:
                    # The constructor is inherited: its parameters are documented
                    # where it is defined; the class itself needs a docstring.
                    if not doc:
                        problems.append(f"{qual}: no docstring")
                else:
                    if doc and "Parameters" not in sections(doc) and init.__doc__:
                        doc = inspect.getdoc(init)  # documented on __init__ instead
                    problems += problems_of(qual, init, doc, skip_first=True)
                for mname, meth, skip_first in own_public_methods(obj):
                    if id(meth) in seen:
                        continue
                    seen.add(id(meth))
                    mqual = f"{qual}.{mname}"
                    if skip_first is None:  # a property: a docstring, no parameters
                        if not inspect.getdoc(meth):
                            problems.append(f"{mqual}: no docstring")
                        continue
                    doc = inspect.getdoc(getattr(obj, mname))
                    problems += problems_of(mqual, meth, doc, skip_first)
            else:
                problems += problems_of(qual, obj, inspect.getdoc(obj))
    return problems


# The names still to document, one problem a line, as the checker words it.
# The list only shrinks: a problem not on it fails, and so does a line that no
# longer describes a problem (delete it when you document the name).
KNOWN_GAPS = Path(__file__).with_name("docstring_gaps.txt")


def known_gaps():
    lines = KNOWN_GAPS.read_text().splitlines() if KNOWN_GAPS.exists() else []
    return {line for line in lines if line.strip() and not line.startswith("#")}


def test_public_api_has_numpydoc_docstrings():
    problems = collect_problems()
    gaps = known_gaps()
    new = [p for p in problems if p not in gaps]
    assert not new, f"{len(new)} public docstring problem(s):\n  " + "\n  ".join(new)
    fixed = sorted(gaps - set(problems))
    assert not fixed, ("documented now, delete from tests/docstring_gaps.txt:\n  "
                       + "\n  ".join(fixed))


@pytest.mark.parametrize("doc, params, expected", [
    ("Summary.", [], []),
    ("", [], ["f: no docstring"]),
    ("Summary.", ["a"], ["f: takes a but its docstring has no Parameters section"]),
    ("Summary.\n\nParameters\n----------\na : int\n    The a.\n", ["a"], []),
    ("S.\n\nParameters\n----------\na, b : int\n    Both.\n**kwargs\n    More.\n\n"
     "Returns\n-------\nc : int\n    Not a parameter.\n", ["a", "b", "kwargs"], []),
    ("S.\n\nParameters\n----------\na : int\n    The a.\n", ["a", "b"],
     ["f: parameters not documented: b"]),
    ("S.\n\nParameters\n----------\na : int\nz : str\n", ["a"],
     ["f: documents parameters it does not take: z"]),
])
def test_checker_catches_what_it_promises(doc, params, expected):
    # The checker itself must be able to fail: a missing docstring, a missing
    # section, a missing and an extra name are each reported.
    func = eval("lambda " + ", ".join(params) + ": None")  # noqa: S307 (test-only)
    assert problems_of("f", func, inspect.cleandoc(doc) if doc else doc) == expected
