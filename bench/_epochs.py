"""The epoch harness the training benchmarks share: one quiet, shuffled
training epoch as a callable, for fastnn (``fit_epoch``: a ``fit`` of one
epoch) and for PyTorch (``torch_epoch``: the plain loop people write).
conftest.py's ``epoch_case`` times the fastnn callable and the PyTorch child
(_torch_cases.py) the other, so both ways time the same work.

This module imports neither library: the fastnn process never loads torch,
and the PyTorch child never loads fastnn."""


def fit_epoch(model, x, y, batch_size, callbacks=None):
    """One ``model.fit`` epoch on ``(x, y)`` (shuffled, silent) as a callable.
    ``callbacks``: a function that makes the callbacks, fresh for each epoch."""
    def epoch():
        model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, shuffle=True,
                  callbacks=None if callbacks is None else callbacks())
    return epoch


def torch_epoch(model, opt, x, y, batch_size, generator=None):
    """One epoch of a PyTorch classifier as a callable: ``model.train()``,
    batches in a fresh ``randperm`` order (of ``generator`` when given),
    cross-entropy on the logits (every step of a sequence output counts as a
    sample), one ``opt`` step per batch."""
    import torch
    cross_entropy = torch.nn.functional.cross_entropy

    def epoch():
        model.train()
        perm = torch.randperm(len(x), generator=generator)
        for i in range(0, len(x), batch_size):
            idx = perm[i:i + batch_size]
            opt.zero_grad()
            logits = model(x[idx])
            cross_entropy(logits.reshape(-1, logits.shape[-1]), y[idx].reshape(-1)).backward()
            opt.step()
    return epoch
