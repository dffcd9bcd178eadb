"""Sphinx configuration for fastnn's user guide and API reference.

The API pages are built by autodoc from the docstrings of the fastnn that
Python imports: the installed package (or the checkout, with ``PYTHONPATH``
pointing at it after ``python setup.py build_ext --inplace``); nothing here
adds the checkout to ``sys.path``, since its uncompiled sources would shadow
an installed build. ``tests/test_docs.py`` builds the site with warnings as
errors and runs every ``.. code-block:: python`` of the guide.
"""
import fastnn

project = "fastnn"
author = "the fastnn authors"
copyright = "the fastnn authors, MIT license"
release = fastnn.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

# numpydoc-style docstrings (Parameters / Returns / Examples) through napoleon.
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False

autodoc_default_options = {
    "members": True,
    "member-order": "bysource",
    "show-inheritance": True,
}
# Signatures as written; type hints go into the description, not the signature line.
autodoc_typehints = "description"
autodoc_preserve_defaults = True

# The bundled theme: no download at build time.
html_theme = "alabaster"
html_theme_options = {"description": "fast, readable deep learning for NumPy users",
                      "fixed_sidebar": True}
html_static_path = []
exclude_patterns = ["_build"]
templates_path = []
