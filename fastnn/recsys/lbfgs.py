"""AutoRec's full-batch L-BFGS path (``optimizer="lbfgs"``, the paper's
choice; a base class of ``AutoRec``): SciPy's L-BFGS-B over the flat
parameter vector, one solver iteration per epoch of the training loop, each
function evaluation one layer-by-layer pass over all samples. Host only."""
import math

import numpy


class _LbfgsFit:
    """``AutoRec.fit``'s L-BFGS run."""

    def _fit_lbfgs(self, X, val, loop):
        """Full-batch L-BFGS, one iteration per epoch: scipy drives the
        iterations, and its per-iteration callback ends each epoch and advances
        the loop's epochs (stopping the solver when they run out or a callback
        stops training)."""
        from scipy.optimize import minimize
        params = self._params()
        sizes = [p.size for _, p, _, _ in params]

        def unpack(theta):
            off = 0
            for (_, p, _, _), size in zip(params, sizes):
                p[...] = theta[off:off + size].reshape(p.shape)
                off += size

        def objective(theta):
            unpack(theta)
            self._zero_grads()
            data_loss, reg = self._loss_and_grads(X, X.shape[0], 1.0)
            grad = numpy.concatenate([g.ravel() for _, _, g, _ in params]).astype(numpy.float64)
            objective.last = data_loss
            return data_loss + reg, grad

        epochs = loop.epochs()
        state = {"epoch": next(epochs, None)}

        def callback(intermediate_result):
            unpack(intermediate_result.x)
            logs = {"loss": float(intermediate_result.fun) / X.nnz,
                    "rmse": math.sqrt(objective.last / X.nnz)}
            loop.end_epoch(state["epoch"], self._with_validation(logs, val))
            state["epoch"] = next(epochs, None)
            if state["epoch"] is None:
                raise StopIteration

        if state["epoch"] is None:  # no epochs to run
            return
        theta0 = numpy.concatenate([p.ravel() for _, p, _, _ in params]).astype(numpy.float64)
        result = minimize(objective, theta0, jac=True, method="L-BFGS-B", callback=callback,
                          options={"maxiter": loop.n_epochs, "maxcor": 20})
        unpack(result.x)
