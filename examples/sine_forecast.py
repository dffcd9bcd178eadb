"""Sine-wave forecasting, many-to-one: an LSTM reads 40 steps of a noisy sum of
two sine waves and a Dense layer predicts the next value.

    python examples/sine_forecast.py [--epochs 20] [--cell gru]

Prints the test MSE beside the naive forecast (repeating the last value).
"""
import argparse

import numpy as np

import fastnn
from fastnn import layers
from fastnn.recipes_rnn import sine_data


def main(argv=None):
    parser = argparse.ArgumentParser(description="sine-wave forecasting with an LSTM")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--cell", default="lstm", choices=["lstm", "gru", "simplernn"])
    parser.add_argument("--samples", type=int, default=3000)
    parser.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2])
    args = parser.parse_args(argv)

    x, y = sine_data(n=args.samples, steps=40, seed=0)   # x: (n, 40, 1), y: (n, 1)
    n_train = int(0.8 * len(x))
    x_train, y_train, x_test, y_test = x[:n_train], y[:n_train], x[n_train:], y[n_train:]

    fastnn.set_seed(0)
    Recurrent = {"lstm": layers.LSTM, "gru": layers.GRU, "simplernn": layers.SimpleRNN}[args.cell]
    model = fastnn.Sequential([fastnn.Input((40, 1)), Recurrent(32), layers.Dense(1)])
    model.compile(fastnn.optimizers.Adam(5e-3), "mse")
    model.fit(x_train, y_train, batch_size=32, epochs=args.epochs, validation_split=0.1,
              verbose=args.verbose)

    mse = float(np.mean((model.predict(x_test) - y_test) ** 2))
    naive = float(np.mean((x_test[:, -1] - y_test) ** 2))
    print(f"test MSE {mse:.5f}  (repeating the last value: MSE {naive:.5f})")
    return {"model": model, "test_mse": mse, "naive_mse": naive}


if __name__ == "__main__":
    main()
