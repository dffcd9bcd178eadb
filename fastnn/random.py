"""The global random state: ``set_seed`` and the generator every initializer,
dropout and shuffle draws from. Backends draw through their ops
(``ops.random_uniform``, ``ops.permutation``): the host ones from this
generator, a device one from its own, which ``set_seed`` reseeds too.
Nothing else belongs here."""
import numpy

_rng = numpy.random.default_rng()


def set_seed(seed: int) -> numpy.random.Generator:
    """Seed fastnn's random generator (initializers, dropout, noise, shuffling).

    Two CPU runs after the same ``set_seed`` give bit-identical results.

    Parameters
    ----------
    seed : int
        A non-negative integer; every backend in use is reseeded from it.

    Returns
    -------
    numpy.random.Generator
        The new generator.

    Raises
    ------
    ValueError
        If ``seed`` is not a non-negative integer.
    """
    global _rng
    if not isinstance(seed, (int, numpy.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    _rng = numpy.random.default_rng(int(seed))
    from .backend import _reseed
    _reseed(int(seed))
    return _rng


def get_rng() -> numpy.random.Generator:
    """The generator fastnn draws from (a ``numpy.random.Generator``)."""
    return _rng
