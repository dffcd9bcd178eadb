"""The functional graph's bookkeeping, apart from running it (``Model``'s):
the nodes in the order they run, a node's call arguments and the masks its
inputs carry, and Keras's names of the model outputs."""


def _topological_nodes(inputs, outputs):
    """Nodes needed for ``outputs``, each after the nodes that feed it."""
    order, seen, on_path = [], set(), set()
    input_ids = {id(t) for t in inputs}

    def visit(tensor):
        if id(tensor) in input_ids:
            return
        node = tensor.node
        if node is None:
            raise ValueError(f"graph disconnected: {tensor!r} is not computed from the model "
                             "inputs; pass every Input the outputs depend on")
        if id(node) in seen:
            return
        if id(node) in on_path:
            raise ValueError("the layer graph has a cycle")
        on_path.add(id(node))
        for t in node.all_inputs:
            visit(t)
        on_path.discard(id(node))
        seen.add(id(node))
        order.append(node)

    for t in outputs:
        visit(t)
    return order


def _node_kwargs(node, values):
    """A node's call arguments with its tensors replaced by their values."""
    kwargs = dict(node.call_kwargs)
    for key, value in node.tensor_kwargs.items():
        if isinstance(value, list):
            kwargs[key] = [values[id(t)] for t in value]
        else:
            kwargs[key] = values[id(value)]
    if "mask" in kwargs:
        kwargs["mask"] = kwargs["mask"] != 0  # a mask given as a model input may be numbers
    return kwargs


def _input_mask(node, masks):
    """The mask(s) a node's inputs carry (None when none does)."""
    if node.layer.multi_input:
        found = [masks.get(id(t)) for t in node.inputs]
        return found if any(m is not None for m in found) else None
    return masks.get(id(node.inputs[0]))


def _output_names(outputs):
    """Keras's output names: the name of the layer making each output; a
    layer's second, third... output gets ``_1``, ``_2``..."""
    names = []
    for t in outputs:
        if t.node is None:
            name = t.name or "input"
        else:
            name = t.node.layer.name + (f"_{t.index}" if t.index else "")
        while name in names:
            name += "_"
        names.append(name)
    return names
