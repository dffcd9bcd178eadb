"""Weight regularizers (L1, L2, L1L2) and activity regularizers (KL sparsity
for sparse autoencoders). Each returns its penalty and adds its gradient; the
model adds the penalties to the loss and the gradients to the parameters'.
They compute on the backend of their input (``ops_for``): a penalty is a
Python float for host arrays and a 0-d array on a device backend (no sync)."""
import numpy

from ._registry import Configurable, lookup
from ._types import Any, Optional
from .backend import ops_for


def _penalty(value):
    """A host NumPy scalar as a Python float; a device scalar stays on the device."""
    return float(value) if isinstance(value, (numpy.generic, numpy.ndarray)) else value


class Regularizer(Configurable):
    """Base class: a penalty on weights or activations, added to the loss.

    Calling it, ``reg(x)``, gives the penalty of ``x`` (a float on the host).
    """
    def __call__(self, x):
        """The penalty for weights or activations ``x`` (a float on the host)."""
        raise NotImplementedError

    def gradient(self, x):
        """d penalty / d x, an array shaped like ``x``.

        Parameters
        ----------
        x : array
            The weights (or activations).
        """
        raise NotImplementedError


class L1L2(Regularizer):
    """``l1 * sum(|W|) + l2 * sum(W**2)`` (Keras's convention: no 1/2 factor).

    Parameters
    ----------
    l1 : float, default 0.0
        The L1 factor.
    l2 : float, default 0.0
        The L2 factor.

    Examples
    --------
    >>> Dense(64, kernel_regularizer=L1L2(l2=1e-4))
    """
    _config_keys: "tuple[str, ...]" = ("l1", "l2")

    def __init__(self, l1=0.0, l2=0.0):
        if l1 < 0 or l2 < 0:
            raise ValueError(f"regularization factors must be >= 0, got l1={l1}, l2={l2}")
        self.l1, self.l2 = float(l1), float(l2)

    def __call__(self, x):
        xp = ops_for(x).xp
        total = 0.0
        if self.l1:
            total += self.l1 * _penalty(xp.abs(x).sum(dtype=numpy.float64))
        if self.l2:
            total += self.l2 * _penalty(xp.square(x, dtype=numpy.float64).sum())
        return total

    def gradient(self, x):
        xp = ops_for(x).xp
        g = xp.zeros_like(x)
        if self.l1:
            g += x.dtype.type(self.l1) * xp.sign(x)
        if self.l2:
            g += x.dtype.type(2 * self.l2) * x
        return g


class L1(L1L2):
    """``l1 * sum(|W|)``.

    Parameters
    ----------
    l1 : float, default 0.01
        The factor.
    """
    _config_keys = ("l1",)

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)


class L2(L1L2):
    """``l2 * sum(W**2)`` (no 1/2 factor, as Keras).

    Parameters
    ----------
    l2 : float, default 0.01
        The factor.
    """
    _config_keys = ("l2",)

    def __init__(self, l2=0.01):
        super().__init__(l2=l2)


class KLSparsity(Regularizer):
    """Sparse-autoencoder activity penalty: ``beta * sum_j KL(rho || rho_hat_j)``
    where ``rho_hat_j`` is unit j's mean activation over the batch. Activations
    must lie in (0, 1) (use a sigmoid layer).

    Parameters
    ----------
    rho : float, default 0.05
        The target mean activation, in (0, 1).
    beta : float, default 1.0
        The penalty's weight.
    """
    _config_keys = ("rho", "beta")
    eps = 1e-7

    def __init__(self, rho=0.05, beta=1.0):
        if not 0 < rho < 1:
            raise ValueError(f"rho (target mean activation) must be in (0, 1), got {rho}")
        self.rho, self.beta = float(rho), float(beta)

    def _rho_hat(self, a):
        ops = ops_for(a)
        if a.ndim < 2:
            raise ValueError(f"KLSparsity expects activations of shape (batch, units), got {a.shape}")
        # The range is checked on the host only (on a device it would sync every batch).
        if ops.is_host and a.size and (a.min() < 0 or a.max() > 1):
            raise ValueError("KLSparsity needs activations in [0, 1] (e.g. a sigmoid layer), "
                             f"got values in [{a.min():.3g}, {a.max():.3g}]")
        return ops.xp.clip(a.reshape(a.shape[0], -1).mean(axis=0, dtype=numpy.float64),
                           self.eps, 1 - self.eps)

    def __call__(self, a):
        xp = ops_for(a).xp
        r, q = self.rho, self._rho_hat(a)
        return self.beta * _penalty(xp.sum(r * xp.log(r / q) + (1 - r) * xp.log((1 - r) / (1 - q))))

    def gradient(self, a):
        """d penalty / d a, an array shaped like ``a``.

        Parameters
        ----------
        a : array
            The layer's activations, ``(batch, units)``, in (0, 1).
        """
        xp = ops_for(a).xp
        r, q = self.rho, self._rho_hat(a)
        g = self.beta * (-r / q + (1 - r) / (1 - q)) / a.shape[0]
        return xp.broadcast_to(g.reshape(a.shape[1:]), a.shape).astype(a.dtype)


_TABLE = {"l1": L1, "l2": L2, "l1_l2": L1L2, "l1l2": L1L2, "kl_sparsity": KLSparsity}


def get(identifier: Any) -> Optional[Regularizer]:
    """A regularizer from None, a name ("l2"), an instance or a config dict.

    Parameters
    ----------
    identifier : str, Regularizer, dict or None
        None (no penalty), a name (``"l1"``, ``"l2"``, ``"l1_l2"``,
        ``"kl_sparsity"``), an instance, or ``{"class_name", "config"}``.

    Returns
    -------
    Regularizer or None
    """
    if identifier is None:
        return None
    reg = lookup(_TABLE, identifier, "regularizer")
    if not isinstance(reg, Regularizer):
        raise TypeError(f"regularizer must be a name or a Regularizer, got {reg!r}")
    return reg
