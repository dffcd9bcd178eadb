"""``Model.summary``'s table, as Keras prints it: the inputs, then each layer
call with its output shape and parameter count, and the "Connected to"
column for a graph that is not a plain chain."""


def print_summary(model, print_fn=print, line_length=None):
    """``model.summary()`` (see there) for a built model."""
    connected = _branches(model)
    line_length = line_length or (98 if connected else 65)
    fractions = (0.30, 0.60, 0.70, 1.0) if connected else (0.45, 0.85, 1.0)
    cols = [int(line_length * f) for f in fractions]

    def row(fields):
        line = ""
        for f, end in zip(fields, cols):
            line = (line + " " + str(f))[:end].ljust(end)
        return line.rstrip()

    def shape_text(t):
        return "(None, " + ", ".join(map(str, t.shape)) + ")"

    # "layer[node][tensor]": node counts the calls of one layer in this model.
    names = {id(t): f"{t.input_layer.name}[0][0]" for t in model.inputs}
    calls: dict = {}
    for node in model._nodes:
        k = calls[id(node.layer)] = calls.get(id(node.layer), -1) + 1
        for t in node.outputs:
            names[id(t)] = f"{node.layer.name}[{k}][{t.index}]"

    header = ["Layer (type)", "Output Shape", "Param #"] + (["Connected to"] if connected else [])
    lines = [f'Model: "{model.name}"', "_" * line_length, row(header), "=" * line_length]
    entries: list = [(f"{t.input_layer.name} (InputLayer)", shape_text(t), "0", [])
                     for t in model.inputs]
    for node in model._nodes:
        layer = node.layer
        shapes = [shape_text(t) for t in node.outputs]
        shape = shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]"
        shared = model._nodes.index(node) != [n.layer for n in model._nodes].index(layer)
        count = 0 if shared else layer.count_params()
        sources = [names.get(id(t), "?") for t in node.all_inputs]
        entries.append((f"{layer.name} ({type(layer).__name__})", shape, f"{count:,}", sources))
    for i, (name, shape, count, sources) in enumerate(entries):
        if connected:
            lines.append(row([name, shape, count, sources[0] if sources else ""]))
            lines += [row(["", "", "", source]) for source in sources[1:]]
        else:
            lines.append(row([name, shape, count]))
        if i < len(entries) - 1:
            lines.append("")
    total = model.count_params()
    trainable = int(sum(p.size for p in model._params(True)))
    lines += ["=" * line_length, f"Total params: {total:,}",
              f"Trainable params: {trainable:,}",
              f"Non-trainable params: {total - trainable:,}", "_" * line_length]
    print_fn("\n".join(lines))


def _branches(model):
    """True when the graph is not a chain (several inputs or outputs, a
    layer with several inputs, a tensor used twice): what Keras shows the
    "Connected to" column for."""
    from .model import Sequential  # (model.py imports this module lazily)
    if len(model.inputs) > 1 or len(model.outputs) > 1:
        return True
    if isinstance(model, Sequential):
        return False
    previous = model.inputs[0]
    for node in model._nodes:
        if len(node.all_inputs) != 1 or node.all_inputs[0] is not previous \
                or len(node.outputs) != 1:
            return True
        previous = node.outputs[0]
    return False

