"""Character-level language model on the King James Genesis and Exodus shipped
with fastnn: Embedding -> LSTM (or GRU) -> Dense softmax over the characters,
trained to predict every next character of windows of 64 characters.

    python examples/char_lm.py [--epochs 10] [--cell gru] [--temperature 0.7]

Prints validation bits per character (about 2.0 after 10 epochs with the
defaults; 5.95 would be guessing uniformly among the 62 characters) and a
sample drawn one character at a time at the given temperature.
"""
import argparse
import math

import fastnn
from fastnn import layers
from fastnn.datasets import CharVocabulary, char_sequences, load_text
from fastnn.recipes_rnn import sample_chars


def main(argv=None):
    parser = argparse.ArgumentParser(description="character-level LSTM language model")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--cell", default="lstm", choices=["lstm", "gru"])
    parser.add_argument("--units", type=int, default=128)
    parser.add_argument("--seq-length", type=int, default=64)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the text's first N characters (quick runs)")
    parser.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2])
    args = parser.parse_args(argv)

    text = load_text()[:args.limit]
    vocab = CharVocabulary(text)
    cut = int(0.9 * len(text))   # the last tenth for validation
    x_train, y_train, _ = char_sequences(text[:cut], args.seq_length, vocabulary=vocab)
    x_val, y_val, _ = char_sequences(text[cut:], args.seq_length, vocabulary=vocab)

    fastnn.set_seed(0)
    Recurrent = layers.LSTM if args.cell == "lstm" else layers.GRU
    model = fastnn.Sequential([
        fastnn.Input((args.seq_length,), dtype="int64"),
        layers.Embedding(len(vocab), 32),
        Recurrent(args.units, return_sequences=True),
        layers.Dense(len(vocab), activation="softmax"),
    ])
    model.compile(fastnn.optimizers.Adam(2e-3), "sparse_categorical_crossentropy")
    model.fit(x_train, y_train, batch_size=64, epochs=args.epochs,
              validation_data=(x_val, y_val), verbose=args.verbose)

    val_loss = model.evaluate(x_val, y_val, batch_size=256)
    bpc = val_loss / math.log(2)
    sample = sample_chars(model, vocab, vocab.decode(x_val[0]), 300, args.temperature, seed=0)
    print(f"sample at temperature {args.temperature:g}:\n{sample}\n")
    print(f"validation bits per character {bpc:.4f}  validation loss {val_loss:.4f}")
    return {"model": model, "val_bpc": bpc, "sample": sample}


if __name__ == "__main__":
    main()
