"""The reference (plain ``xp``) batch-normalization methods of the
array-backend contract, a mixin of ``Ops`` (ops.py). ``NumpyOps`` routes them
to the Cython kernels; a device backend overrides them.
"""


class NormRefMixin:
    """``Ops``'s batch-normalization methods, in ``self.xp``."""

    # ----------------------------------------------------- batch normalization
    # x is the (rows, features) view, features last (a layer moves any other
    # feature axis last). Statistics are per feature, reduced in float64.
    def batchnorm_forward(self, x, gamma, beta, epsilon, mean=None, variance=None):
        """``y = (x - mean) / sqrt(variance + epsilon) * gamma + beta`` for x (m, n).

        With ``mean`` and ``variance`` None (training) they are the batch's
        per-feature mean and *biased* variance; otherwise the given ones
        (inference: the moving statistics). ``gamma``/``beta`` (n,) may be
        None (1 and 0). Returns ``(y, mean, variance)``, statistics in x's dtype."""
        xp = self.xp
        if mean is None:
            x64 = x.astype(xp.float64)
            mean64 = x64.mean(axis=0)
            variance = ((x64 - mean64) ** 2).mean(axis=0).astype(x.dtype)
            mean = mean64.astype(x.dtype)
        scale = 1.0 / xp.sqrt(variance.astype(xp.float64) + epsilon)
        if gamma is not None:
            scale = scale * gamma
        y = (x - mean) * scale.astype(x.dtype)
        if beta is not None:
            y = y + beta
        return y.astype(x.dtype), mean, variance

    def batchnorm_backward(self, x, dy, gamma, mean, variance, epsilon, dgamma=None,
                           dbeta=None, batch_stats=True, need_dx=True):
        """The gradient of ``batchnorm_forward``: accumulates ``dgamma +=
        sum(dy * xhat)`` and ``dbeta += sum(dy)`` over rows (each may be None)
        and returns dx (None unless ``need_dx``). ``batch_stats``: mean and
        variance were x's own (training), so dx also flows through them:
        ``dx = gamma*inv*(dy - mean(dy) - xhat*mean(dy*xhat))``; else
        ``dx = gamma*inv*dy`` (fixed, inference statistics)."""
        xp = self.xp
        m = x.shape[0]
        inv = 1.0 / xp.sqrt(variance.astype(xp.float64) + epsilon)
        xhat = (x.astype(xp.float64) - mean) * inv
        d64 = dy.astype(xp.float64)
        sdy = d64.sum(axis=0)
        sdyx = (d64 * xhat).sum(axis=0)
        if dbeta is not None:
            dbeta += sdy.astype(dbeta.dtype)
        if dgamma is not None:
            dgamma += sdyx.astype(dgamma.dtype)
        if not need_dx:
            return None
        k = inv if gamma is None else inv * gamma
        if batch_stats and m:
            dx = k * (d64 - sdy / m - xhat * (sdyx / m))
        else:
            dx = k * d64
        return dx.astype(x.dtype)

    # The feature axis in the middle: x (outer, features, inner), an NCHW batch
    # viewed as (N, C, H*W). The reference moves the features last and back;
    # NumpyOps runs a kernel on the strided layout itself.
    def batchnorm_forward_strided(self, x, gamma, beta, epsilon, mean=None, variance=None):
        """``batchnorm_forward`` for x (p, n, q), feature j being ``x[:, j, :]``:
        returns ``(y, mean, variance)``, y shaped like x."""
        xp = self.xp
        p, n, q = x.shape
        x2 = xp.ascontiguousarray(xp.transpose(x, (0, 2, 1))).reshape(-1, n)
        y2, mean, variance = self.batchnorm_forward(x2, gamma, beta, epsilon, mean, variance)
        y = xp.ascontiguousarray(xp.transpose(y2.reshape(p, q, n), (0, 2, 1)))
        return y, mean, variance

    def batchnorm_backward_strided(self, x, dy, gamma, mean, variance, epsilon, dgamma=None,
                                   dbeta=None, batch_stats=True, need_dx=True):
        """``batchnorm_backward`` for x, dy (p, n, q), feature j being
        ``x[:, j, :]``: dx shaped like x (None unless ``need_dx``)."""
        xp = self.xp
        p, n, q = x.shape
        x2 = xp.ascontiguousarray(xp.transpose(x, (0, 2, 1))).reshape(-1, n)
        dy2 = xp.ascontiguousarray(xp.transpose(dy, (0, 2, 1))).reshape(-1, n)
        dx2 = self.batchnorm_backward(x2, dy2, gamma, mean, variance, epsilon, dgamma, dbeta,
                                      batch_stats, need_dx)
        if dx2 is None:
            return None
        return xp.ascontiguousarray(xp.transpose(dx2.reshape(p, q, n), (0, 2, 1)))
