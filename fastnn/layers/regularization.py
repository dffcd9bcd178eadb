"""Training-time regularization layers: Dropout and GaussianNoise (the input
corruption of denoising autoencoders). Both are the identity at inference."""
from .._types import Any, Optional
from .base import Layer


class Dropout(Layer):
    """Zeroes a fraction ``rate`` of the inputs while training and scales the
    rest by ``1 / (1 - rate)`` (inverted dropout).

    Parameters
    ----------
    rate : float
        In [0, 1): the fraction of inputs dropped.
    seed : int, optional
        Accepted for Keras code and unused: ``fastnn.set_seed`` seeds the draws.
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).
    """
    supports_masking = True

    def __init__(self, rate: float, seed: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(f"Dropout rate must be in [0, 1), got {rate}")
        self.rate = float(rate)

    def forward(self, x, training=False):
        if not training or self.rate == 0:
            return x, lambda dy: dy
        ops = self.ops
        keep = ops.random_uniform(x.shape, x.dtype) >= self.rate
        mask = keep * x.dtype.type(1.0 / (1.0 - self.rate))
        return x * mask, lambda dy: dy * mask

    def get_config(self):
        return {**super().get_config(), "rate": self.rate}


class GaussianNoise(Layer):
    """Adds zero-mean Gaussian noise of standard deviation ``stddev`` while training.

    Parameters
    ----------
    stddev : float
        The noise's standard deviation.
    **kwargs
        Base layer arguments (``name``, ``dtype``, ``trainable``,
        ``input_shape``, ...; see ``Layer``).
    """
    supports_masking = True

    def __init__(self, stddev: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if stddev < 0:
            raise ValueError(f"GaussianNoise stddev must be >= 0, got {stddev}")
        self.stddev = float(stddev)

    def forward(self, x, training=False):
        if not training or self.stddev == 0:
            return x, lambda dy: dy
        noise = self.ops.random_normal(x.shape, x.dtype)
        noise *= x.dtype.type(self.stddev)
        return x + noise, lambda dy: dy

    def get_config(self):
        return {**super().get_config(), "stddev": self.stddev}
