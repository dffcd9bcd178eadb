"""Name lookup shared by activations, losses, optimizers, initializers,
regularizers and metrics: a string resolves to a class through a table, and an
unknown name gets an error listing the valid ones."""


def lookup(table, identifier, kind, instantiate=True):
    """Resolve ``identifier`` (a name, an instance, or a config dict) from ``table``."""
    if isinstance(identifier, str):
        key = identifier.lower()
        if key not in table:
            raise ValueError(f"unknown {kind} {identifier!r}; valid names are: "
                             + ", ".join(sorted(table)))
        cls = table[key]
        return cls() if instantiate else cls
    if isinstance(identifier, dict) and "class_name" in identifier:
        classes = {cls.__name__: cls for cls in table.values()}
        name = identifier["class_name"]
        if name not in classes:
            raise ValueError(f"unknown {kind} class {name!r}; valid classes are: "
                             + ", ".join(sorted(classes)))
        return classes[name].from_config(identifier.get("config", {}))
    return identifier


def serialize(obj):
    """``{"class_name", "config"}`` for a config-able object (None stays None)."""
    if obj is None:
        return None
    return {"class_name": type(obj).__name__, "config": obj.get_config()}


class Configurable:
    """``get_config``/``from_config`` from the constructor arguments a subclass
    lists in ``_config_keys`` (stored as attributes of the same name)."""

    _config_keys: "tuple[str, ...]" = ()

    def get_config(self):
        return {k: getattr(self, k) for k in self._config_keys}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
