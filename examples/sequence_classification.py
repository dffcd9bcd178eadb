"""Classifying variable-length sequences: token sequences of 3 to 30 steps,
padded with 0 to 30 and masked by Embedding(mask_zero=True), so the LSTM
stops at each sequence's last real token. A sequence's class: whether it holds
more tokens from the lower half of the vocabulary than from the upper half.

    python examples/sequence_classification.py [--epochs 10]

Prints the test accuracy, then checks that padding does not matter: the same
weights in a model taking 50 steps give the same predictions.
"""
import argparse

import numpy as np

import fastnn
from fastnn import layers
from fastnn.recipes_rnn import masked_sequences


def classifier(max_len, cell):
    Recurrent = {"lstm": layers.LSTM, "gru": layers.GRU, "simplernn": layers.SimpleRNN}[cell]
    model = fastnn.Sequential([
        fastnn.Input((max_len,), dtype="int64"),
        layers.Embedding(20, 16, mask_zero=True),   # index 0 is padding
        Recurrent(32),
        layers.Dense(1, activation="sigmoid"),
    ])
    model.compile(fastnn.optimizers.Adam(5e-3), "binary_crossentropy", metrics=["accuracy"])
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description="masked sequence classification")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--cell", default="lstm", choices=["lstm", "gru", "simplernn"])
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2])
    args = parser.parse_args(argv)

    x, lengths, y = masked_sequences(n=args.samples, max_len=30, seed=0)
    n_train = int(0.8 * len(x))
    fastnn.set_seed(0)
    model = classifier(30, args.cell)
    model.fit(x[:n_train], y[:n_train], batch_size=32, epochs=args.epochs,
              validation_split=0.1, verbose=args.verbose)
    loss, accuracy = model.evaluate(x[n_train:], y[n_train:])
    print(f"test accuracy {accuracy:.4f}  test loss {loss:.4f}")

    # More padding changes nothing: the same weights reading 50 steps.
    longer = classifier(50, args.cell)
    longer.set_weights(model.get_weights())
    x50 = np.pad(x[n_train:], ((0, 0), (0, 20)))
    gap = float(np.abs(longer.predict(x50) - model.predict(x[n_train:])).max())
    print(f"largest prediction change with 20 more padded steps: {gap:.2g}")
    return {"model": model, "test_accuracy": accuracy, "padding_gap": gap}


if __name__ == "__main__":
    main()
