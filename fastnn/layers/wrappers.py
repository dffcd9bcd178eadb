"""Layers that wrap a layer: the ``Wrapper`` base (what ``TimeDistributed``
and, later, ``Bidirectional`` share: the wrapped layer is tracked, so its
weights, gradients and regularizers are the wrapper's; its config nests in
the wrapper's) and ``TimeDistributed``. The wrapped layer's own computation
stays in the wrapped layer; a wrapper only reshapes or routes."""
from .base import Layer


def serialize_layer(layer):
    """``{"class_name", "config"}`` of a layer, for a composite's config."""
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def deserialize_layer(spec):
    """A layer from ``serialize_layer``'s dict (the class must be registered:
    fastnn's own are; custom ones with ``fastnn.layers.register_layer``)."""
    from . import layer_class
    if isinstance(spec, Layer):
        return spec
    if not isinstance(spec, dict) or "class_name" not in spec:
        raise ValueError(f"expected a layer or a {{'class_name', 'config'}} dict, got {spec!r}")
    return layer_class(spec["class_name"]).from_config(dict(spec.get("config", {})))


class Wrapper(Layer):
    """Base of layers that wrap one layer (``self.layer``). The wrapper
    computes in the wrapped layer's dtype unless told otherwise; then an
    unbuilt wrapped layer takes the wrapper's dtype."""

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise TypeError(f"{type(self).__name__} wraps a fastnn layer, got "
                            f"{type(layer).__name__}")
        kwargs.setdefault("dtype", layer.dtype)
        super().__init__(**kwargs)
        if layer.dtype != self.dtype:
            if layer.built:
                raise ValueError(f"{type(self).__name__} {self.name!r} computes in {self.dtype} "
                                 f"but the wrapped layer {layer.name!r} is built in {layer.dtype}")
            layer.dtype = self.dtype
        self.layer = layer
        if not self.trainable:
            self.trainable = False  # set before the layer was held: freeze it too, as Keras

    def get_config(self):
        return {**super().get_config(), "layer": serialize_layer(self.layer)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["layer"] = deserialize_layer(config["layer"])
        return cls(**config)


class TimeDistributed(Wrapper):
    """Applies the wrapped layer to every time step of a (batch, steps, ...)
    input with the same weights: ``TimeDistributed(Dense(8))``. The steps are
    folded into the batch, so the wrapped layer runs once on (batch * steps,
    ...), not once per step. A mask on the input passes through unchanged."""
    supports_masking = True

    def __init__(self, layer, **kwargs):
        super().__init__(layer, **kwargs)
        self.skips_input_grad = layer.skips_input_grad

    def _check_rank(self, input_shape):
        if len(input_shape) < 2:
            raise ValueError(f"TimeDistributed layer {self.name!r} needs inputs of shape "
                             f"(batch, steps, ...) with at least one feature axis, got "
                             f"(None, {', '.join(map(str, input_shape))})")

    def build(self, input_shape):
        self._check_rank(input_shape)
        self.build_sublayer(self.layer, tuple(input_shape[1:]))
        self.built = True

    def check_input_shape(self, input_shape):
        self._check_rank(input_shape)
        self.layer.check_input_shape(tuple(input_shape[1:]))

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape(tuple(input_shape[1:]))
        return (input_shape[0],) + tuple(inner)

    def forward(self, x, training=False, mask=None):
        if x.ndim < 3:
            raise ValueError(f"TimeDistributed layer {self.name!r} needs inputs of shape "
                             f"(batch, steps, ...), got {tuple(x.shape)}")
        n, steps = x.shape[:2]
        y, inner_backprop = self.layer.forward(x.reshape((n * steps,) + x.shape[2:]), training)
        y_shape = (n, steps) + y.shape[1:]

        def backprop(dy, need_dx=True):
            dy = dy.reshape((n * steps,) + dy.shape[2:])
            dx = inner_backprop(dy, need_dx=False) if not need_dx else inner_backprop(dy)
            return None if dx is None else dx.reshape(x.shape)

        return y.reshape(y_shape), backprop
