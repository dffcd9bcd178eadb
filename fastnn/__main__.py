"""The command line: ``fastnn <command> [options]`` or ``python -m fastnn ...``.

Commands: ``demo`` (the README's main job: trains on data shipped in the
package, no network), ``mnist`` (the MLP on real MNIST), ``autoencoder``
(MNIST autoencoders), ``cnn`` (convolutional networks on MNIST and
Fashion-MNIST), ``rnn`` (the recurrent networks: character LM, sine
forecasting, masked classification), ``autorec`` (the AutoRec evaluation
protocol on a ratings file), ``datasets`` (list or download the data sets). Each command has
``--help``; ``--version`` prints fastnn's version. Bad input (a missing data
folder, a malformed file, a failed download) ends with one line on stderr,
``<prog> <command>: error: ...``, and exit status 1, never a traceback.
"""
import argparse
import os
import sys
import time


def _prog(argv0=None):
    """The program as invoked: ``fastnn`` (the console script) or
    ``python -m fastnn`` (anything else, e.g. ``__main__.py``)."""
    name = os.path.basename(sys.argv[0] if argv0 is None else argv0)
    return "fastnn" if os.path.splitext(name)[0] == "fastnn" else "python -m fastnn"


def _version():
    """The installed distribution's version when it is this copy of fastnn,
    else ``fastnn.__version__`` (a source checkout on PYTHONPATH, where another
    installed fastnn must not answer for it)."""
    from importlib import metadata
    try:
        dist = metadata.distribution("fastnn")
        located = os.path.abspath(str(dist.locate_file("fastnn/__main__.py")))
        if located == os.path.abspath(__file__):
            return dist.version
    except (metadata.PackageNotFoundError, OSError):
        pass
    from fastnn import __version__
    return __version__


class _VersionAction(argparse.Action):
    """``--version``, computed only when asked (it may import fastnn)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS,
                 help="print fastnn's version and exit"):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"fastnn {_version()}")   # on stdout, as argparse's own version action
        parser.exit()


def _fail(args, message):
    """One line on stderr, exit status 1: bad input is not a bug."""
    raise SystemExit(f"{args.prog} {args.command}: error: {message}")


def _load_mnist_or_fail(args, kind):
    from fastnn.datasets import load_mnist
    try:
        return load_mnist(args.data, kind=kind, verbose=1 if args.verbose else 0)
    except (OSError, ValueError) as e:   # missing file, failed download, damaged file
        _fail(args, e)


def _demo(args):
    import fastnn
    from fastnn import layers
    from fastnn.datasets import load_digits

    fastnn.set_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load_digits(return_split=True, seed=args.seed)
    print(f"demo: MLP on the embedded UCI handwritten digits (8x8, CC BY 4.0): "
          f"{len(x_train)} training and {len(x_test)} test images, 10 classes")
    model = fastnn.Sequential([fastnn.Input((64,)), layers.Dense(128, activation="relu"),
                               layers.Dropout(0.2), layers.Dense(64, activation="relu"),
                               layers.Dense(10, activation="softmax")], name="digits_mlp")
    model.compile(fastnn.optimizers.Adam(3e-3), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.summary()
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=32, epochs=args.epochs, validation_split=0.1,
              verbose=args.verbose)
    elapsed = time.perf_counter() - start
    result = model.evaluate(x_test, y_test, return_dict=True)
    print(f"test loss {result['loss']:.4f}  test accuracy {result['accuracy']:.4f}  "
          f"(trained in {elapsed:.1f} s)")
    if not args.skip_cnn:
        _demo_cnn(args, (x_train, y_train), (x_test, y_test))
    if not args.skip_autorec:
        _demo_autorec(args)
    return 0


def _demo_cnn(args, train, test):
    """The tiny convnet on the same digits, as 8x8 one-channel images."""
    import fastnn
    from fastnn import recipes

    (x_train, y_train), (x_test, y_test) = train, test
    fastnn.set_seed(args.seed)
    print("\ndemo: a tiny convnet on the same digits as 8x8x1 images: Conv2D 16 3x3, "
          "MaxPooling2D 2, Conv2D 32 3x3, Dense 10")
    model = recipes.digits_convnet()
    start = time.perf_counter()
    model.fit(x_train.reshape(-1, 8, 8, 1), y_train, batch_size=32, epochs=args.cnn_epochs,
              verbose=args.verbose)
    elapsed = time.perf_counter() - start
    result = model.evaluate(x_test.reshape(-1, 8, 8, 1), y_test, return_dict=True)
    print(f"convnet: test loss {result['loss']:.4f}  test accuracy {result['accuracy']:.4f}  "
          f"(trained in {elapsed:.1f} s)")


def _demo_autorec(args):
    """A small I-AutoRec job on SYNTHETIC ratings (MovieLens may not be
    redistributed, so none ships with fastnn)."""
    import numpy

    from fastnn.recsys import AutoRec, random_split, synthetic_ratings, validation_split

    ratings = synthetic_ratings(n_users=600, n_items=400, density=0.05, seed=args.seed)
    train, test = random_split(ratings, 0.1, seed=args.seed)
    part, val = validation_split(train, 0.1, seed=args.seed)
    print(f"\ndemo: I-AutoRec (k=100) on SYNTHETIC ratings, not MovieLens: {ratings.n_users} "
          f"users x {ratings.n_items} items, {ratings.nnz} ratings; 90/10 split, "
          f"early stopping on a validation part of the training ratings")
    model = AutoRec(hidden=100, lam=10.0, learning_rate=1e-2, seed=args.seed)
    start = time.perf_counter()
    model.fit(part, validation=val, epochs=200, patience=10, verbose=0)
    rmse, mae = model.evaluate(test)
    baseline = float(numpy.sqrt(numpy.mean((test.matrix.data - part.matrix.data.mean()) ** 2)))
    print(f"best epoch {model.best_epoch} by validation RMSE; test RMSE {rmse:.4f}  "
          f"MAE {mae:.4f} (predicting the mean rating: RMSE {baseline:.4f}); "
          f"trained in {time.perf_counter() - start:.1f} s")
    items, _ = model.recommend(0, k=5)
    rated = ", ".join(f"{p:.2f}" for p in model.predict([0] * 5, items))
    print(f"user {ratings.user_ids[0]}: top 5 items outside its training ratings "
          f"{ratings.item_ids[items].tolist()}, predicted ratings {rated} "
          f"(model.recommend, model.predict)")


def _mnist(args):
    from fastnn import recipes

    data = _load_mnist_or_fail(args, args.kind)
    if args.limit:
        (xt, yt), test = data
        data = (xt[:args.limit], yt[:args.limit]), test   # the test set stays whole
    print(f"{args.kind}: {len(data[0][0])} training and {len(data[1][0])} test images; "
          f"MLP 784-{'-'.join(map(str, args.hidden))}-10, Adam, batch {args.batch_size}")
    result = recipes.train_mnist_mlp(data, epochs=args.epochs, batch_size=args.batch_size,
                                     verbose=args.verbose, seed=args.seed,
                                     hidden=tuple(args.hidden), learning_rate=args.lr)
    print(f"test accuracy {result['test_accuracy']:.4f}  test loss {result['test_loss']:.4f}  "
          f"({result['train_seconds']:.1f} s training)")
    if args.save:
        result["model"].save(args.save)
        print(f"saved the model to {args.save}")
    return 0


def _autoencoder(args):
    from fastnn import recipes

    (xt, yt), (xs, ys) = _load_mnist_or_fail(args, "mnist")
    if args.limit:
        xt = xt[:args.limit]   # the test set stays whole
    print(f"mnist: {len(xt)} training and {len(xs)} test images; {args.kind} autoencoder, "
          f"code {args.code}")
    result = recipes.train_autoencoder(((xt, None), (xs, None)), kind=args.kind,
                                       epochs=args.epochs, verbose=args.verbose, seed=args.seed,
                                       code=args.code)
    print(f"{args.kind} autoencoder: test per-pixel binary cross-entropy {result['test_bce']:.4f}, "
          f"MSE {result['test_mse']:.4f} ({result['train_seconds']:.1f} s training)")
    return 0


# The builders' options that `fastnn cnn` passes on, by flag: which kinds take them.
_CNN_OPTIONS = {"dropout": ("mnist", "fashion", "residual"),
                "translation": ("fashion", "residual"),
                "label_smoothing": ("fashion", "residual"),
                "weight_decay": ("fashion", "residual")}


def _cnn_options(args):
    """The builder keyword arguments given on the command line (refused, before
    any data is read, for a kind whose network does not take them)."""
    given = {k: getattr(args, k) for k in _CNN_OPTIONS if getattr(args, k) is not None}
    for k in given:
        if args.kind not in _CNN_OPTIONS[k]:
            _fail(args, f"--{k.replace('_', '-')} applies to --kind "
                        f"{' or '.join(_CNN_OPTIONS[k])}, not {args.kind}")
    return given


def _cnn(args):
    from fastnn import recipes

    dataset = recipes.CNN_KINDS[args.kind][1]
    say = print if args.verbose else (lambda *a, **k: None)   # --verbose 0: the result only
    options = _cnn_options(args)
    data = _load_mnist_or_fail(args, dataset)
    if args.limit:
        (xt, yt), test = data
        data = (xt[:args.limit], yt[:args.limit]), test   # the test set stays whole
    epochs = args.epochs if args.epochs is not None else CNN_EPOCHS[args.kind]
    model = recipes.CNN_KINDS[args.kind][0].__name__
    say(f"{dataset}: {len(data[0][0])} training and {len(data[1][0])} test images; {model}, "
        f"Adam, batch {args.batch_size}, {epochs} epochs")
    if args.kind == "autoencoder":
        result = recipes.train_conv_autoencoder(data, epochs=epochs, batch_size=args.batch_size,
                                                verbose=args.verbose, seed=args.seed)
        if args.plot:
            try:
                recipes.plot_denoising(result["noisy"], result["reconstruction"],
                                       recipes.images(data[1][0]), args.plot)
                say(f"wrote noisy / denoised / original test digits to {args.plot}")
            except ImportError:
                say("matplotlib is not installed: no reconstruction plot")
            except OSError as e:
                _fail(args, f"cannot write the plot {args.plot}: {e}")
    else:
        kwargs = {} if args.lr is None else {"learning_rate": args.lr}
        kwargs.update(options)
        result = recipes.train_cnn(data, kind=args.kind, epochs=epochs,
                                   batch_size=args.batch_size, verbose=args.verbose,
                                   seed=args.seed, **kwargs)
    if args.save:
        result["model"].save(args.save)
        say(f"saved the model to {args.save}")
    timing = (f"{result['train_seconds']:.1f} s training, fastest epoch "
              f"{min(result['epoch_seconds']):.1f} s")
    if args.kind == "autoencoder":
        print(f"test BCE {result['test_bce']:.4f}  test MSE {result['test_mse']:.4f}  "
              f"(noisy test digits against the originals; {timing})")
    else:
        print(f"test accuracy {result['test_accuracy']:.4f}  test loss "
              f"{result['test_loss']:.4f}  ({timing})")
    return 0


def _autorec(args):
    import json

    from fastnn.recsys import load_ratings
    from fastnn.recsys.movielens import MOVIELENS, fetch_movielens
    from fastnn.recsys.protocol import evaluate_autorec, format_table

    try:
        if args.data in MOVIELENS and not os.path.exists(args.data):
            # A MovieLens name: the cached ratings file, downloaded on first use.
            args.data = fetch_movielens(args.data, verbose=0 if args.json else 1)
        ratings = load_ratings(args.data, format=args.format,
                               rating_range=args.rating_range, duplicates=args.duplicates)
    except (OSError, ValueError) as e:
        # A bad file is the user's input, not a bug: one clear line, exit status 1.
        _fail(args, e)
    if args.save and (len(args.seeds) != 1 or args.models != 1):
        _fail(args, "--save keeps one model: give one seed (got --seeds "
                    f"{' '.join(map(str, args.seeds))}) and --models 1 (got {args.models})")
    hidden = args.hidden[0] if len(args.hidden) == 1 else tuple(args.hidden)
    log = None if args.json else (lambda line: print(line, file=sys.stderr, flush=True))
    if log:
        print(f"autorec: {ratings!r} from {ratings.source or args.data}; {args.variant}-AutoRec "
              f"hidden {args.hidden}, {args.optimizer}, lambda grid {args.lam}, "
              f"seeds {args.seeds}", file=sys.stderr)
    try:
        result = evaluate_autorec(
            ratings, seeds=tuple(args.seeds), test_frac=args.test_frac,
            val_frac=args.val_frac, lams=tuple(args.lam), optimizer=args.optimizer,
            epochs=args.epochs, patience=args.patience, variant=args.variant, hidden=hidden,
            refit=not args.no_refit, learning_rate=args.lr, batch_size=args.batch_size,
            input_dropout=args.input_dropout,
            lr_decay=None if args.no_lr_decay else args.lr_decay,
            lr_decay_patience=args.lr_decay_patience, n_models=args.models, k=args.k, log=log,
            keep_models=bool(args.save))
    except ValueError as e:
        # Settings that do not fit the data (an empty split part, a bad fraction):
        # the protocol says what is wrong before training on it.
        _fail(args, e)
    models = result.pop("models", None)
    if args.save:
        try:
            models[0].save(args.save)
        except OSError as e:
            _fail(args, f"cannot save to {args.save}: {e}")
        result["saved"] = args.save
        if log:
            log(f"saved the tested model of seed {args.seeds[0]} to {args.save} "
                "(fastnn.recsys.AutoRec.load reads it)")
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(format_table(result))
    return 0


def _rnn(args):
    """The RNN chapter's three jobs (fastnn.recipes_rnn); the final metric is
    the last line, the only one with --verbose 0."""
    from fastnn import recipes_rnn

    talk = args.verbose > 0
    fit_verbose = args.verbose
    if args.kind == "charlm":
        from fastnn.datasets.text import TEXT_SOURCE
        if talk:
            print(f"charlm: Embedding({args.embedding_dim}) -> {args.cell.upper()}"
                  f"({args.units}) -> Dense softmax, sequences of {args.seq_length} "
                  f"characters, batch {args.batch_size}, Adam {args.lr:g}; text: {TEXT_SOURCE}"
                  + (f", first {args.limit} characters" if args.limit else ""))
        r = recipes_rnn.train_char_lm(
            seq_length=args.seq_length, batch_size=args.batch_size, epochs=args.epochs,
            cell=args.cell, units=args.units, embedding_dim=args.embedding_dim,
            learning_rate=args.lr, limit=args.limit, seed=args.seed, verbose=fit_verbose,
            temperature=args.temperature, sample_length=args.sample_length if talk else 0)
        if talk and args.sample_length:
            print(f"sample at temperature {args.temperature:g} (seed {args.seed}):\n"
                  f"{r['sample']}\n")
        print(f"validation bits per character {r['val_bpc']:.4f}  validation loss "
              f"{r['val_loss']:.4f}  ({r['train_seconds']:.1f} s training)")
    elif args.kind == "sine":
        if talk:
            print(f"sine: forecasting the next value of noisy two-sine series, 40 steps, "
                  f"{args.cell.upper()}({args.units}) -> Dense(1), batch {args.batch_size}, "
                  f"Adam {args.lr:g}")
        r = recipes_rnn.train_sine(n=args.limit or 3000, epochs=args.epochs,
                                   batch_size=args.batch_size, cell=args.cell,
                                   units=args.units, learning_rate=args.lr, seed=args.seed,
                                   verbose=fit_verbose)
        print(f"test MSE {r['test_mse']:.5f}  (repeating the last value: MSE "
              f"{r['naive_mse']:.5f})  ({r['train_seconds']:.1f} s training)")
    else:
        if talk:
            print(f"classify: token sequences of 3..30 steps padded with 0 and masked "
                  f"(Embedding(mask_zero=True)) -> {args.cell.upper()}({args.units}) -> "
                  f"Dense(1, sigmoid), batch {args.batch_size}, Adam {args.lr:g}")
        r = recipes_rnn.train_classifier(n=args.limit or 3000, epochs=args.epochs,
                                         batch_size=args.batch_size, cell=args.cell,
                                         units=args.units, learning_rate=args.lr,
                                         seed=args.seed, verbose=fit_verbose)
        print(f"test accuracy {r['test_accuracy']:.4f}  test loss {r['test_loss']:.4f}  "
              f"({r['train_seconds']:.1f} s training)")
    if args.save:
        r["model"].save(args.save)
        if talk:
            print(f"saved the model to {args.save}")
    return 0


#: Per-kind defaults of ``fastnn rnn`` (epochs, units, batch size, learning rate).
RNN_DEFAULTS = {"charlm": (10, 128, 64, 2e-3), "sine": (20, 32, 32, 5e-3),
                "classify": (10, 32, 32, 5e-3)}


def _rnn_defaults(args):
    """Fill the per-kind defaults, check the temperature, then run."""
    for name, value in zip(("epochs", "units", "batch_size", "lr"), RNN_DEFAULTS[args.kind]):
        if getattr(args, name) is None:
            setattr(args, name, value)
    if not args.temperature > 0:
        _fail(args, f"--temperature must be > 0, got {args.temperature}")
    if args.kind == "charlm" and args.limit is not None and args.limit < 20 * args.seq_length:
        _fail(args, f"--limit {args.limit} leaves too little text for sequences of "
                    f"{args.seq_length} characters (at least {20 * args.seq_length})")
    return _rnn(args)


#: ``fastnn cnn``: each kind's default number of epochs (fastnn.recipes.CNN_DEFAULTS,
#: copied so that the parser does not import the recipes; a test keeps them equal).
CNN_EPOCHS = {"mnist": 12, "fashion": 16, "residual": 12, "autoencoder": 5}


#: What ``fastnn datasets`` knows, in the order it lists them.
DATASETS = ("mnist", "fashion-mnist", "ml-100k", "ml-1m", "ml-10m", "ml-latest-small")


def _dataset_status(name, root):
    """(where it lives in the cache, whether it is there, where it comes from)."""
    if name in ("mnist", "fashion-mnist"):
        from fastnn.datasets.mnist import remote_files
        remotes = remote_files("mnist" if name == "mnist" else "fashion")
        folder = os.path.join(root, name)
        cached = all(os.path.isfile(os.path.join(folder, r.name)) for r in remotes)
        return folder, cached, remotes[0].urls[0].rsplit("/", 1)[0] + "/"
    from fastnn.recsys.movielens import MOVIELENS, ratings_path
    path = ratings_path(name, root)
    return path, os.path.isfile(path), MOVIELENS[name].archive.urls[0]


def _datasets(args):
    from fastnn.datasets import data_home, fetch_mnist
    from fastnn.recsys.movielens import fetch_movielens

    root = args.data or data_home()
    if args.action == "list":
        print(f"data sets in {root} (the cache: --data, else $FASTNN_DATA, else "
              f"~/.cache/fastnn-data)")
        for name in DATASETS:
            where, cached, source = _dataset_status(name, root)
            print(f"  {name:<16} {'cached' if cached else 'not cached':<11} {where}  "
                  f"(from {source})")
        return 0
    for name in args.names:
        try:
            if name in ("mnist", "fashion-mnist"):
                where = fetch_mnist("mnist" if name == "mnist" else "fashion",
                                    os.path.join(root, name), verbose=args.verbose)
            else:
                where = fetch_movielens(name, root, verbose=args.verbose)
        except (OSError, ValueError) as e:
            _fail(args, e)
        print(f"{name}: {where}")
    return 0


def _factor(text):
    """argparse type: a float strictly between 0 and 1."""
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a factor in (0, 1), got {text}")
    return value


def _unit_float(text):
    value = float(text)
    if not 0.0 <= value <= 1.0:   # also refuses nan
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1], got {text}")
    return value


def _dropout_rate(text):
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a rate in [0, 1), got {text}")
    return value


def _nonnegative_float(text):
    value = float(text)
    if not 0.0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text}")
    return value


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text}")
    return value


def build_parser(prog=None):
    """The argument parser; ``prog`` defaults to the program as invoked."""
    prog = _prog() if prog is None else prog
    parser = argparse.ArgumentParser(prog=prog,
                                     description="fastnn: fast, readable deep learning on NumPy.")
    parser.add_argument("--version", action=_VersionAction)
    parser.set_defaults(prog=prog)
    sub = parser.add_subparsers(dest="command", metavar="command")
    sub.required = True
    demo = sub.add_parser("demo", help="train a small MLP and an AutoRec on data shipped with "
                          "fastnn (no network)",
                          description="Train a small MLP on the embedded UCI digits and an "
                                      "I-AutoRec on synthetic ratings, and print test metrics. "
                                      "Needs no download.")
    demo.add_argument("--epochs", type=int, default=30, help="training epochs (default 30)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2],
                      help="0 silent, 1 progress bar, 2 one line per epoch")
    demo.add_argument("--skip-autorec", action="store_true",
                      help="skip the AutoRec part (synthetic ratings)")
    demo.add_argument("--skip-cnn", action="store_true", help="skip the convnet part")
    demo.add_argument("--cnn-epochs", type=int, default=15,
                      help="training epochs of the convnet (default 15)")
    demo.set_defaults(func=_demo)

    data_help = ("folder with the four MNIST IDX .gz files; a missing file there is an "
                 "error (default: $FASTNN_DATA/mnist or ~/.cache/fastnn-data/mnist, "
                 "downloaded there on first use, as Keras does)")
    mnist = sub.add_parser("mnist", help="train the 784-256-128-10 MLP on MNIST",
                           description="Train an MLP classifier on MNIST (or Fashion-MNIST) "
                                       "and print its test accuracy.")
    mnist.add_argument("--data", default=None, help=data_help)
    mnist.add_argument("--kind", default="mnist", choices=["mnist", "fashion"])
    mnist.add_argument("--epochs", type=int, default=10, help="training epochs (default 10)")
    mnist.add_argument("--batch-size", type=int, default=128)
    mnist.add_argument("--hidden", type=int, nargs="+", default=[256, 128],
                       help="hidden layer sizes (default 256 128)")
    mnist.add_argument("--lr", type=float, default=1e-3, help="initial Adam learning rate "
                       "(cosine-decayed to zero)")
    mnist.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                       help="use only the first N training images (the test set stays whole)")
    mnist.add_argument("--seed", type=int, default=0)
    mnist.add_argument("--save", default=None, help="save the trained model to this file")
    mnist.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2])
    mnist.set_defaults(func=_mnist)

    ae = sub.add_parser("autoencoder", help="train an autoencoder on MNIST",
                        description="Train a dense, stacked, denoising or sparse autoencoder on "
                                    "MNIST and print the test reconstruction error.")
    ae.add_argument("--data", default=None, help=data_help)
    ae.add_argument("--kind", default="dense", choices=["dense", "stacked", "denoising", "sparse"])
    ae.add_argument("--epochs", type=int, default=20)
    ae.add_argument("--code", type=int, default=32, help="code size (default 32)")
    ae.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                    help="use only the first N training images (the test set stays whole)")
    ae.add_argument("--seed", type=int, default=0)
    ae.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2])
    ae.set_defaults(func=_autoencoder)

    cnn = sub.add_parser(
        "cnn", help="train a convolutional network on MNIST or Fashion-MNIST",
        description="Train a convolutional network and print its test accuracy (the "
                    "autoencoder: its test binary cross-entropy). Kinds: mnist, Keras's "
                    "MNIST convnet (Conv 32, MaxPool, Conv 64, MaxPool, Dropout, Dense) on "
                    "MNIST; fashion, a small residual network of batch-normalized separable "
                    "convolutions on Fashion-MNIST; residual, that network on MNIST; "
                    "autoencoder, a denoising convolutional autoencoder on MNIST (Conv/"
                    "MaxPool encoder, Conv2DTranspose decoder) with a plot of noisy, "
                    "denoised and original test digits when matplotlib is installed.")
    cnn.add_argument("--data", default=None, help=data_help.replace(
        "/mnist or", "/mnist (fashion-mnist for --kind fashion) or"))
    cnn.add_argument("--kind", default="mnist", choices=list(CNN_EPOCHS))
    cnn.add_argument("--epochs", type=_positive_int, default=None,
                     help="training epochs (default: " + ", ".join(
                         f"{k} {n}" for k, n in CNN_EPOCHS.items()) + ")")
    cnn.add_argument("--batch-size", type=_positive_int, default=128)
    cnn.add_argument("--lr", type=float, default=None, help="initial Adam learning rate of "
                     "the classifiers, cosine-decayed to zero (default: the model's, 3e-3 for "
                     "mnist, 2e-3 for the residual network)")
    cnn.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                     help="use only the first N training images (the test set stays whole)")
    cnn.add_argument("--dropout", type=_dropout_rate, default=None, metavar="P",
                     help="the classifiers' dropout rate (default: 0.5 for mnist, 0.3 for "
                          "the residual network)")
    cnn.add_argument("--translation", type=_unit_float, default=None, metavar="F",
                     help="residual network: random shifts of the training images by up to "
                          "F of their size (default: 0.04 for fashion, 0 for residual)")
    cnn.add_argument("--label-smoothing", type=_unit_float, default=None, metavar="S",
                     help="residual network: Keras's label smoothing of the targets "
                          "(default 0)")
    cnn.add_argument("--weight-decay", type=_nonnegative_float, default=None, metavar="W",
                     help="residual network: AdamW's decoupled weight decay (default 0)")
    cnn.add_argument("--plot", default="cnn_autoencoder.png", metavar="FILE",
                     help="autoencoder: where to write the reconstruction plot (default "
                          "cnn_autoencoder.png; '' for none)")
    cnn.add_argument("--seed", type=int, default=0)
    cnn.add_argument("--save", default=None, help="save the trained model to this file")
    cnn.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2],
                     help="0 only the result line, 1 progress bar, 2 one line per epoch")
    cnn.set_defaults(func=_cnn)

    from fastnn.recsys.protocol import DEFAULT_LAMS, LEARNING_RATE, LR_DECAY, LR_DECAY_PATIENCE
    ar = sub.add_parser(
        "autorec", help="evaluate I-/U-AutoRec on a ratings file (split, select, test)",
        description="Run the AutoRec protocol on a ratings file: per seed, a random "
                    "test split and a validation part carved from training; lambda and "
                    "the number of epochs (and the learning-rate cuts) chosen on "
                    "validation RMSE only; a refit on train+validation for the chosen "
                    "epochs, replaying the cuts; then test RMSE/MAE and "
                    "Precision/Recall/NDCG/HR@K (training items excluded). Prints "
                    "validation and test metrics per seed and mean ± std.",
        epilog=f"example: {prog} autorec --data ml-100k (MovieLens-100K, downloaded into "
               "the cache on first use; or a file: --data ~/ml-1m/ratings.dat)")
    ar.add_argument("--data", required=True, help="ratings file (u.data, ratings.dat, "
                    "ratings.csv or a RecBole .inter file), the directory holding it, or a "
                    "MovieLens name (ml-100k, ml-1m, ml-10m, ml-latest-small: downloaded "
                    "into $FASTNN_DATA on first use)")
    ar.add_argument("--format", default=None, choices=["movielens", "dat", "csv", "inter"],
                    help="file layout (default: detected from the name and first line)")
    ar.add_argument("--rating-range", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                    help="declared rating scale, e.g. 1 5: a rating outside it is an error "
                         "naming its line, and predictions are clipped to it (default: the "
                         "observed min and max)")
    ar.add_argument("--duplicates", default="last", choices=["last", "error"],
                    help="a repeated (user, item) pair: keep the last in file order "
                         "(default) or stop with an error naming both lines")
    ar.add_argument("--variant", default="item", choices=["item", "user"],
                    help="I-AutoRec (one sample per item, default) or U-AutoRec")
    ar.add_argument("--hidden", type=int, nargs="+", default=[500],
                    help="hidden size, or several for a deeper stack, e.g. 500 250 500 "
                         "(default 500)")
    ar.add_argument("--lam", type=float, nargs="+", default=list(DEFAULT_LAMS),
                    help="L2 weight lambda, or a grid searched on validation "
                         f"(default {' '.join(f'{x:g}' for x in DEFAULT_LAMS)})")
    ar.add_argument("--optimizer", default="adam", choices=["adam", "lbfgs"],
                    help="minibatch Adam (default) or full-batch L-BFGS")
    ar.add_argument("--epochs", type=int, default=300,
                    help="most epochs (L-BFGS: iterations) per lambda; early stopping on "
                         "validation RMSE picks the count (default 300)")
    ar.add_argument("--patience", type=int, default=25,
                    help="epochs without validation improvement before stopping (default 25)")
    ar.add_argument("--lr", type=float, default=LEARNING_RATE,
                    help=f"initial Adam learning rate (default {LEARNING_RATE:g})")
    ar.add_argument("--lr-decay", type=_factor, default=LR_DECAY, metavar="FACTOR",
                    help="multiply the learning rate by FACTOR, in (0, 1), after every "
                         "--lr-decay-patience epochs without a new best validation RMSE; "
                         "the refit replays the recorded cuts (default "
                         f"{LR_DECAY:g}; ignored with L-BFGS)")
    ar.add_argument("--lr-decay-patience", type=_positive_int, default=LR_DECAY_PATIENCE,
                    metavar="N",
                    help=f"epochs without improvement before each cut (default "
                         f"{LR_DECAY_PATIENCE})")
    ar.add_argument("--no-lr-decay", action="store_true",
                    help="keep the learning rate constant")
    ar.add_argument("--batch-size", type=int, default=256, help="minibatch size (default 256)")
    ar.add_argument("--input-dropout", type=float, default=0.5,
                    help="fraction of input ratings dropped in training (denoising; "
                         "default 0.5)")
    ar.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4],
                    help="one split per seed (default 0 1 2 3 4)")
    ar.add_argument("--test-frac", type=float, default=0.1, help="test fraction (default 0.1)")
    ar.add_argument("--val-frac", type=float, default=0.1,
                    help="validation fraction of the training part (default 0.1)")
    ar.add_argument("--no-refit", action="store_true",
                    help="test the selected model as trained on the fit part, without the "
                         "refit on train+validation")
    ar.add_argument("--models", type=int, default=1,
                    help="refit this many models (different initial weights) and average "
                         "their predictions (default 1: a single model)")
    ar.add_argument("--k", type=int, default=10, help="K of the ranking metrics (default 10)")
    ar.add_argument("--json", action="store_true",
                    help="print only the machine-readable result (JSON), no progress")
    ar.add_argument("--save", metavar="FILE", default=None,
                    help="save the tested model (one seed, --models 1) to FILE, for "
                         "fastnn.recsys.AutoRec.load")
    ar.set_defaults(func=_autorec)

    ds = sub.add_parser("datasets", help="list the data sets or download them into the cache",
                        description="List the data sets fastnn can download, or download "
                                    "them into the cache now (SHA-256 checked, as "
                                    "load_mnist() and load_movielens() do on first use). "
                                    "Set FASTNN_DATA_MIRROR to a base URL to download from a "
                                    "mirror laid out as <url>/mnist/..., "
                                    "<url>/movielens/ml-100k.zip.")
    ds_sub = ds.add_subparsers(dest="action", metavar="action")
    ds_sub.required = True
    root_help = "cache root (default: $FASTNN_DATA or ~/.cache/fastnn-data)"
    ds_list = ds_sub.add_parser("list", help="each data set, whether it is cached, its source",
                                description="List each data set, where it lives in the "
                                            "cache, whether it is there, and its URL.")
    ds_list.add_argument("--data", default=None, metavar="DIR", help=root_help)
    ds_fetch = ds_sub.add_parser("fetch", help="download data sets into the cache",
                                 description="Download the named data sets into the cache "
                                             "unless they are there already.")
    ds_fetch.add_argument("names", nargs="+", choices=DATASETS, metavar="NAME",
                          help=f"one or more of: {', '.join(DATASETS)}")
    ds_fetch.add_argument("--data", default=None, metavar="DIR", help=root_help)
    ds_fetch.add_argument("--verbose", type=int, default=1, choices=[0, 1],
                          help="0 silent, 1 a progress bar on stderr (default)")
    ds.set_defaults(func=_datasets)

    # The RNN chapter (fastnn.recipes_rnn): added as its own block.
    rnn = sub.add_parser(
        "rnn", help="recurrent networks: a character LM, sine forecasting, masked "
        "sequence classification (no download)",
        description="Train one of the RNN chapter's models on data shipped with fastnn or "
                    "generated, and print its final metric: charlm (validation bits per "
                    "character on the embedded King James text, and a sample), sine (test "
                    "MSE), classify (test accuracy on padded, masked sequences).",
        epilog=f"example: {prog} rnn --kind charlm --epochs 10 --temperature 0.7")
    rnn.add_argument("--kind", default="charlm", choices=["charlm", "sine", "classify"])
    rnn.add_argument("--cell", default="lstm", choices=["lstm", "gru", "simplernn"],
                     help="recurrent layer (default lstm)")
    rnn.add_argument("--epochs", type=_positive_int, default=None,
                     help="training epochs (default: charlm 10, sine 20, classify 10)")
    rnn.add_argument("--units", type=_positive_int, default=None,
                     help="recurrent units (default: charlm 128, others 32)")
    rnn.add_argument("--batch-size", type=_positive_int, default=None,
                     help="minibatch size (default: charlm 64, others 32)")
    rnn.add_argument("--lr", type=float, default=None,
                     help="Adam learning rate (default: charlm 2e-3, others 5e-3)")
    rnn.add_argument("--seq-length", type=_positive_int, default=64,
                     help="charlm: characters per training sequence (default 64)")
    rnn.add_argument("--embedding-dim", type=_positive_int, default=32,
                     help="charlm: embedding size (default 32)")
    rnn.add_argument("--temperature", type=float, default=0.8,
                     help="charlm: sampling temperature, > 0 (default 0.8)")
    rnn.add_argument("--sample-length", type=int, default=300,
                     help="charlm: characters to sample after training (default 300)")
    rnn.add_argument("--limit", type=_positive_int, default=None, metavar="N",
                     help="charlm: use the text's first N characters; sine, classify: N "
                          "sequences (default 3000)")
    rnn.add_argument("--seed", type=int, default=0)
    rnn.add_argument("--save", default=None, help="save the trained model to this file")
    rnn.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2],
                     help="0 only the final metric, 1 progress bar, 2 one line per epoch")
    rnn.set_defaults(func=_rnn_defaults)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
