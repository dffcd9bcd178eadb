"""Ratings data: the ``Ratings`` container (a users x items CSR matrix with id
maps both ways) and readers for the common public rating-file layouts.

Holds parsing and the container only; train/test splits live in splits.py,
models and metrics elsewhere.

Formats (``load_ratings(path, format=None)`` detects them):

* ``"movielens"``: MovieLens 100K ``u.data``: ``user item rating timestamp``,
  whitespace (tab) separated, no header.
* ``"dat"``: MovieLens 1M/10M ``ratings.dat``: ``user::item::rating::timestamp``.
* ``"csv"``: MovieLens latest ``ratings.csv``: header ``userId,movieId,rating,timestamp``
  (columns found by name; ``user_id``/``item_id`` spellings accepted).
* ``"inter"``: RecBole atomic ``.inter`` file: tab separated, header
  ``user_id:token<TAB>item_id:token<TAB>rating:float<TAB>timestamp:float``.

Rules
-----
* Raw ids become indices in sorted order of the raw ids: integers when every id
  of a kind is a plain canonical integer (ASCII digits, an optional ``-``, no
  leading zero, within int64), otherwise the strings the file holds, so that
  ``01`` and ``1``, or ``1_000`` and ``1000``, stay different ids.
* Timestamps must be finite; they are int64 when all are whole numbers within
  int64, float64 otherwise.
* A malformed line raises ValueError naming the file and the 1-based line number.
  Blank lines are skipped. A file with no ratings raises ValueError.
* Ratings must be finite in float32 (the matrix's dtype); with ``rating_range=(lo, hi)`` they must lie in it
  (else ValueError naming the line). Without it the range is the observed
  min and max.
* Duplicate (user, item) pairs: ``duplicates="last"`` (default) keeps the
  last occurrence in file order; ``duplicates="error"`` raises ValueError
  naming both lines.
* A rating of 0 is kept as an observed entry: the sparsity pattern, not the
  value, says what was rated.
"""
import math
import os
import re

import numpy
import scipy.sparse

from .._types import Any, ArrayIn, Dict, Optional, Tuple

FORMATS = ("movielens", "dat", "csv", "inter")


class Ratings:
    """Explicit ratings: ``matrix`` is a ``scipy.sparse.csr_matrix`` of float32,
    users x items, sorted indices, every stored entry observed.

    Attributes
    ----------
    matrix : csr_matrix (n_users, n_items), float32
    user_ids, item_ids : ndarray, raw id of each index (``user_ids[u]``)
    timestamps : ndarray or None, aligned with ``matrix.data`` (CSR order)
    rating_range : (lo, hi) floats
    source : str or None, where the data came from

    Parameters
    ----------
    matrix : scipy.sparse matrix
        The ratings, users x items (stored as float32 CSR).
    user_ids, item_ids : array_like
        The raw id of each row and column index.
    rating_range : tuple of float, optional
        ``(lo, hi)``; default: the observed minimum and maximum.
    timestamps : array_like, optional
        One per stored rating, in CSR order.
    source : str, optional
        Where the data came from (for messages).

    Examples
    --------
    >>> from fastnn.recsys import Ratings
    >>> r = Ratings.from_triples(["u1", "u1", "u2"], ["a", "b", "a"], [5, 3, 4])
    >>> r.shape
    (2, 2)
    """

    def __init__(self, matrix: Any, user_ids: ArrayIn, item_ids: ArrayIn,
                 rating_range: Optional[Tuple[float, float]] = None,
                 timestamps: Optional[ArrayIn] = None, source: Optional[str] = None) -> None:
        matrix = scipy.sparse.csr_matrix(matrix, dtype=numpy.float32)
        if not matrix.has_sorted_indices:
            raise ValueError("Ratings.matrix must have sorted indices; build it with "
                             "Ratings.from_triples")
        user_ids = numpy.asarray(user_ids)
        item_ids = numpy.asarray(item_ids)
        if matrix.shape != (len(user_ids), len(item_ids)):
            raise ValueError(f"matrix has shape {matrix.shape} but there are {len(user_ids)} "
                             f"user ids and {len(item_ids)} item ids")
        if timestamps is not None:
            timestamps = numpy.asarray(timestamps)
            if timestamps.shape != (matrix.nnz,):
                raise ValueError(f"timestamps has shape {timestamps.shape}; expected "
                                 f"({matrix.nnz},), one per stored rating")
            if timestamps.dtype.kind == "f" and not numpy.isfinite(timestamps).all():
                raise ValueError("timestamps must be finite numbers; got "
                                 f"{int((~numpy.isfinite(timestamps)).sum())} NaN or infinite")
        if rating_range is None:
            rating_range = ((float(matrix.data.min()), float(matrix.data.max()))
                            if matrix.nnz else (0.0, 0.0))
        self.matrix = matrix
        self.user_ids = user_ids
        self.item_ids = item_ids
        self.timestamps = timestamps
        self.rating_range = (float(rating_range[0]), float(rating_range[1]))
        self.source = source
        self._user_index: Optional[Dict[Any, int]] = None
        self._item_index: Optional[Dict[Any, int]] = None

    # ------------------------------------------------------------ construction
    @classmethod
    def from_triples(cls, users: ArrayIn, items: ArrayIn, ratings: ArrayIn,
                     timestamps: Optional[ArrayIn] = None,
                     rating_range: Optional[Tuple[float, float]] = None, duplicates: str = "last",
                     user_ids: Optional[ArrayIn] = None, item_ids: Optional[ArrayIn] = None,
                     source: Optional[str] = None,
                     line_numbers: Optional[ArrayIn] = None) -> "Ratings":
        """Build from parallel arrays of raw user ids, raw item ids and ratings.

        ``user_ids``/``item_ids`` (raw ids, index order) fix the id maps, e.g. to
        share them between a train and a test file; every raw id must be in them.
        Otherwise they are the sorted unique raw ids. ``line_numbers`` (for
        error messages) default to the 1-based position in the arrays.

        Parameters
        ----------
        users, items : array_like
            Raw user and item ids, one per rating.
        ratings : array_like
            The ratings.
        timestamps : array_like, optional
            One per rating.
        rating_range : tuple of float, optional
            ``(lo, hi)``; a rating outside it is an error. Default: the observed range.
        duplicates : {"last", "error"}, default "last"
            A repeated (user, item) pair keeps its last rating, or is an error.
        user_ids, item_ids : array_like, optional
            Fixed id maps (raw ids in index order), e.g. a train file's for its test file.
        source : str, optional
            Where the data came from (for messages).
        line_numbers : array_like, optional
            The file line of each rating (for messages).

        Returns
        -------
        Ratings

        Raises
        ------
        ValueError
            On a non-finite or out-of-range rating, an unknown id, or a duplicate
            with ``duplicates="error"`` (the message names the line).
        """
        if duplicates not in ("last", "error"):
            raise ValueError(f"duplicates={duplicates!r}; expected 'last' or 'error'")
        users = numpy.asarray(users)
        items = numpy.asarray(items)
        values = numpy.asarray(ratings, dtype=numpy.float64)
        if not (len(users) == len(items) == len(values)):
            raise ValueError(f"users, items and ratings have lengths {len(users)}, "
                             f"{len(items)}, {len(values)}; they must be equal")
        where = source or "ratings"
        lines = (numpy.arange(1, len(values) + 1) if line_numbers is None
                 else numpy.asarray(line_numbers))
        if len(values) == 0:
            raise ValueError(f"{where}: no ratings")
        bad = ~numpy.isfinite(values)
        if bad.any():
            i = int(numpy.argmax(bad))
            raise ValueError(f"{where}, line {lines[i]}: rating {values[i]} is not a finite number")
        with numpy.errstate(over="ignore"):
            bad = ~numpy.isfinite(values.astype(numpy.float32))
        if bad.any():
            i = int(numpy.argmax(bad))
            raise ValueError(f"{where}, line {lines[i]}: rating {values[i]:g} does not fit in "
                             f"float32 (|rating| <= {float(numpy.finfo(numpy.float32).max):g})")
        if rating_range is not None:
            lo, hi = float(rating_range[0]), float(rating_range[1])
            if not lo <= hi:
                raise ValueError(f"rating_range {rating_range} has low > high")
            bad = (values < lo) | (values > hi)
            if bad.any():
                i = int(numpy.argmax(bad))
                raise ValueError(f"{where}, line {lines[i]}: rating {values[i]:g} is outside "
                                 f"the declared range [{lo:g}, {hi:g}]")
        user_ids, u = _index(users, user_ids, "user", where, lines)
        item_ids, it = _index(items, item_ids, "item", where, lines)
        n_items = len(item_ids)
        key = u.astype(numpy.int64) * n_items + it
        # Stable sort by (user, item): among duplicates, file order is kept, so
        # the last one of each run is the last in the file.
        order = numpy.argsort(key, kind="stable")
        key = key[order]
        last = numpy.ones(len(key), dtype=bool)
        last[:-1] = key[1:] != key[:-1]
        if duplicates == "error" and not last.all():
            d = int(numpy.argmin(last))
            a, b = order[d], order[d + 1]
            raise ValueError(f"{where}: duplicate rating of user {users[a].tolist()!r} for item "
                             f"{items[a].tolist()!r} on lines {lines[a]} and {lines[b]} "
                             f"(pass duplicates='last' to keep the last one)")
        keep = order[last]
        u, it = u[keep], it[keep]
        indptr = numpy.zeros(len(user_ids) + 1, dtype=numpy.int64)
        numpy.cumsum(numpy.bincount(u, minlength=len(user_ids)), out=indptr[1:])
        index_dtype = numpy.int32 if len(keep) < 2**31 - 1 else numpy.int64
        matrix = scipy.sparse.csr_matrix(
            (values[keep].astype(numpy.float32), it.astype(index_dtype),
             indptr.astype(index_dtype)), shape=(len(user_ids), n_items))
        matrix.has_sorted_indices = True
        ts = None if timestamps is None else numpy.asarray(timestamps)[keep]
        return cls(matrix, user_ids, item_ids, rating_range, ts, source)

    def with_matrix(self, matrix: Any, timestamps: Optional[ArrayIn] = None) -> "Ratings":
        """A Ratings sharing this one's id maps and range, over another matrix of
        the same shape (e.g. a train or test part).

        Parameters
        ----------
        matrix : scipy.sparse matrix
            Of this one's shape.
        timestamps : array_like, optional
            One per stored rating.

        Returns
        -------
        Ratings
        """
        if matrix.shape != self.shape:
            raise ValueError(f"matrix has shape {matrix.shape}; expected {self.shape}")
        return Ratings(matrix, self.user_ids, self.item_ids, self.rating_range, timestamps,
                       self.source)

    def subset(self, mask: ArrayIn) -> "Ratings":
        """The ratings whose entry in ``mask`` (length nnz, CSR order) is true,
        with the same shape and id maps.

        Parameters
        ----------
        mask : array_like of bool
            One entry per stored rating.

        Returns
        -------
        Ratings
        """
        mask = numpy.asarray(mask, dtype=bool)
        if mask.shape != (self.nnz,):
            raise ValueError(f"mask has shape {mask.shape}; expected ({self.nnz},)")
        m = self.matrix
        rows = numpy.repeat(numpy.arange(self.n_users), numpy.diff(m.indptr))[mask]
        indptr = numpy.zeros(self.n_users + 1, dtype=m.indptr.dtype)
        numpy.cumsum(numpy.bincount(rows, minlength=self.n_users), out=indptr[1:])
        sub = scipy.sparse.csr_matrix((m.data[mask], m.indices[mask], indptr), shape=self.shape)
        sub.has_sorted_indices = True
        ts = None if self.timestamps is None else self.timestamps[mask]
        return self.with_matrix(sub, ts)

    # --------------------------------------------------------------- queries
    @property
    def shape(self) -> Tuple[int, int]:
        """``(n_users, n_items)``."""
        return self.matrix.shape

    @property
    def n_users(self) -> int:
        """The number of users (rows)."""
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        """The number of items (columns)."""
        return self.matrix.shape[1]

    @property
    def nnz(self) -> int:
        """The number of ratings."""
        return self.matrix.nnz

    @property
    def user_index(self) -> Dict[Any, int]:
        """dict raw user id -> row index."""
        if self._user_index is None:
            self._user_index = {k: i for i, k in enumerate(self.user_ids.tolist())}
        return self._user_index

    @property
    def item_index(self) -> Dict[Any, int]:
        """dict raw item id -> column index."""
        if self._item_index is None:
            self._item_index = {k: i for i, k in enumerate(self.item_ids.tolist())}
        return self._item_index

    def item_matrix(self) -> scipy.sparse.csr_matrix:
        """Items x users CSR (float32, sorted): the samples of I-AutoRec."""
        t = self.matrix.T.tocsr()
        t.sort_indices()
        return t

    def to_triples(self) -> Tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray]:
        """``(user_index, item_index, rating)`` arrays in CSR order."""
        m = self.matrix
        return (numpy.repeat(numpy.arange(self.n_users), numpy.diff(m.indptr)),
                m.indices.copy(), m.data.copy())

    def __len__(self):
        return self.nnz

    def __repr__(self):
        return (f"Ratings({self.n_users} users x {self.n_items} items, {self.nnz} ratings, "
                f"range {self.rating_range})")


def _index(raw, ids, kind, where, lines):
    """(ids, index of each raw id): sorted unique ids, or the given ones."""
    if ids is None:
        ids, inverse = numpy.unique(raw, return_inverse=True)
        return ids, inverse.ravel().astype(numpy.int64)
    ids = numpy.asarray(ids)
    order = numpy.argsort(ids, kind="stable")
    if len(ids) and (ids[order][1:] == ids[order][:-1]).any():
        raise ValueError(f"the given {kind}_ids hold duplicates")
    try:
        pos = numpy.searchsorted(ids[order], raw)
    except TypeError:
        raise ValueError(f"{where}: {kind} ids of type {raw.dtype} cannot be looked up in "
                         f"{kind}_ids of type {ids.dtype}") from None
    pos = numpy.minimum(pos, max(len(ids) - 1, 0))
    found = (ids[order][pos] == raw) if len(ids) else numpy.zeros(len(raw), dtype=bool)
    if not found.all():
        i = int(numpy.argmin(found))
        raise ValueError(f"{where}, line {lines[i]}: {kind} {raw[i].tolist()!r} is not in the "
                         f"given {kind}_ids")
    return ids, order[pos].astype(numpy.int64)


# ------------------------------------------------------------------- parsing
_CANONICAL_INT = re.compile(r"-?(0|[1-9][0-9]*)", re.ASCII)


def _ids(tokens):
    """Integer array when every token is a canonical integer, else the strings.

    Python's ``int`` also reads ``01``, ``+1``, ``1_000`` and non-ASCII digits;
    taking those as integers would merge different raw ids into one."""
    if all(_CANONICAL_INT.fullmatch(t) and t != "-0" for t in tokens):
        try:
            return numpy.array(tokens, dtype=numpy.int64)
        except (ValueError, OverflowError):
            pass  # beyond int64: keep the strings
    return numpy.array(tokens, dtype=str)


def _parse(path, rows, sep, columns):
    """Split data lines into (users, items, ratings, timestamps, line numbers).

    ``rows``: list of (line number, text). ``columns``: field positions of
    user, item, rating, timestamp (None when absent).
    """
    need = max(c for c in columns if c is not None) + 1
    users, items, ratings, times, numbers = [], [], [], [], []
    cu, ci, cr, ct = columns
    what = "tab/whitespace" if sep is None else repr(sep)
    for number, line in rows:
        f = line.split(sep)
        if len(f) < need:
            raise ValueError(f"{path}, line {number}: expected at least {need} fields "
                             f"separated by {what}, got {len(f)}: {line!r}")
        try:
            r = float(f[cr])
        except ValueError:
            raise ValueError(f"{path}, line {number}: rating {f[cr]!r} is not a number") from None
        if math.isnan(r) or math.isinf(r):
            raise ValueError(f"{path}, line {number}: rating {f[cr]!r} is not a finite number")
        users.append(f[cu].strip())
        items.append(f[ci].strip())
        ratings.append(r)
        numbers.append(number)
        if ct is not None:
            try:
                t = float(f[ct])
            except ValueError:
                raise ValueError(f"{path}, line {number}: timestamp {f[ct]!r} is not a "
                                 f"number") from None
            if not math.isfinite(t):
                raise ValueError(f"{path}, line {number}: timestamp {f[ct]!r} is not a "
                                 f"finite number")
            times.append(t)
    if not ratings:
        raise ValueError(f"{path}: the file holds no ratings")
    ts = numpy.array(times) if ct is not None else None
    # Whole numbers within int64 become int64 (2**63 itself is a float64 that
    # int64 cannot hold, hence the strict bound).
    if ts is not None and (ts == numpy.round(ts)).all() and (numpy.abs(ts) < 2.0**63).all():
        ts = ts.astype(numpy.int64)
    return _ids(users), _ids(items), numpy.array(ratings), ts, numpy.array(numbers)


def _lines(path):
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8-sig")  # a leading BOM (Excel's CSVs) is not data
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ValueError(f"{path}, line {line}: not UTF-8 text (byte 0x{data[e.start]:02x}); "
                         f"expected a ratings text file") from None
    return [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]


def _find(header, names, path, what):
    lower = [h.strip().lower() for h in header]
    for name in names:
        if name in lower:
            return lower.index(name)
    raise ValueError(f"{path}, line 1: header {header} has no {what} column "
                     f"(expected one of {list(names)})")


def read_movielens(path: Any, **kwargs: Any) -> "Ratings":
    """MovieLens 100K ``u.data``: ``user item rating timestamp`` per line.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    **kwargs
        ``rating_range``, ``duplicates``, ``user_ids``, ``item_ids`` (see ``load_ratings``).

    Returns
    -------
    Ratings
    """
    return _build(path, _parse(path, _lines(path), None, (0, 1, 2, 3)), kwargs)


def read_dat(path: Any, **kwargs: Any) -> "Ratings":
    """MovieLens 1M/10M ``ratings.dat``: ``user::item::rating::timestamp``.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    **kwargs
        ``rating_range``, ``duplicates``, ``user_ids``, ``item_ids`` (see ``load_ratings``).

    Returns
    -------
    Ratings
    """
    return _build(path, _parse(path, _lines(path), "::", (0, 1, 2, 3)), kwargs)


def read_csv(path: Any, **kwargs: Any) -> "Ratings":
    """``ratings.csv`` with a header naming userId, movieId, rating[, timestamp].

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    **kwargs
        ``rating_range``, ``duplicates``, ``user_ids``, ``item_ids`` (see ``load_ratings``).

    Returns
    -------
    Ratings
    """
    rows = _lines(path)
    if not rows:
        raise ValueError(f"{path}: the file is empty")
    header = rows[0][1].split(",")
    cols = (_find(header, ("userid", "user_id", "user"), path, "user"),
            _find(header, ("movieid", "itemid", "item_id", "movie_id", "item"), path, "item"),
            _find(header, ("rating",), path, "rating"),
            _find_optional(header, ("timestamp", "time")))
    return _build(path, _parse(path, rows[1:], ",", cols), kwargs)


def read_inter(path: Any, **kwargs: Any) -> "Ratings":
    """RecBole atomic ``.inter`` file: tab separated, ``name:type`` header.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    **kwargs
        ``rating_range``, ``duplicates``, ``user_ids``, ``item_ids`` (see ``load_ratings``).

    Returns
    -------
    Ratings
    """
    rows = _lines(path)
    if not rows:
        raise ValueError(f"{path}: the file is empty")
    header = [h.split(":")[0] for h in rows[0][1].split("\t")]
    cols = (_find(header, ("user_id", "user"), path, "user"),
            _find(header, ("item_id", "item"), path, "item"),
            _find(header, ("rating", "label"), path, "rating"),
            _find_optional(header, ("timestamp",)))
    return _build(path, _parse(path, rows[1:], "\t", cols), kwargs)


def _find_optional(header, names):
    lower = [h.strip().lower() for h in header]
    return next((lower.index(n) for n in names if n in lower), None)


def _build(path, parsed, kwargs):
    users, items, ratings, ts, numbers = parsed
    return Ratings.from_triples(users, items, ratings, ts, source=os.fspath(path),
                                line_numbers=numbers, **kwargs)


_READERS = {"movielens": read_movielens, "dat": read_dat, "csv": read_csv,
            "inter": read_inter}


def detect_format(path):
    """Guess the format from the name, then from the first non-blank line."""
    name = os.path.basename(os.fspath(path)).lower()
    if name.endswith(".inter"):
        return "inter"
    if name.endswith(".csv"):
        return "csv"
    with open(path, encoding="utf-8", errors="replace") as f:
        first = next((line for line in f if line.strip()), "")
    if not first:
        raise ValueError(f"{path}: the file is empty")
    if "::" in first:
        return "dat"
    if ":token" in first or ":float" in first:
        return "inter"
    if "," in first:
        return "csv"
    return "movielens"


def _ratings_file_in(directory):
    for name in ("u.data", "ratings.dat", "ratings.csv"):
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate):
            return candidate
    inter = sorted(n for n in os.listdir(directory) if n.endswith(".inter"))
    if len(inter) == 1:
        return os.path.join(directory, inter[0])
    found = f"; it holds several: {inter}" if inter else ""
    raise ValueError(f"{directory} is a directory without a ratings file: expected u.data, "
                     f"ratings.dat, ratings.csv or one .inter file in it{found}")


def load_ratings(path: Any, format: Optional[str] = None,
                 rating_range: Optional[Tuple[float, float]] = None, duplicates: str = "last",
                 user_ids: Optional[ArrayIn] = None,
                 item_ids: Optional[ArrayIn] = None) -> "Ratings":
    """Read a ratings file into a ``Ratings``; ``format`` is one of
    ``FORMATS`` or None to detect it (see the module docstring for the rules).
    A directory stands for the ratings file in it: ``u.data``, ``ratings.dat``,
    ``ratings.csv`` or a single ``.inter`` file (an unpacked MovieLens or
    RecBole dataset).

    Parameters
    ----------
    path : str or os.PathLike
        A ratings file or a folder holding one.
    format : str, optional
        One of ``FORMATS`` ("movielens", "dat", "csv", "inter"); default: detected.
    rating_range : tuple of float, optional
        ``(lo, hi)``; a rating outside it is an error. Default: the observed range.
    duplicates : {"last", "error"}, default "last"
        A repeated (user, item) pair keeps its last rating, or is an error.
    user_ids, item_ids : array_like, optional
        Fixed id maps (raw ids in index order), e.g. a train file's for its test file.

    Returns
    -------
    Ratings

    Raises
    ------
    ValueError
        If the file cannot be read as ratings (the message names the line).
    """
    if os.path.isdir(path):
        path = _ratings_file_in(path)
    if format is None:
        format = detect_format(path)
    if format not in _READERS:
        raise ValueError(f"format={format!r}; expected one of {FORMATS} or None")
    return _READERS[format](path, rating_range=rating_range, duplicates=duplicates,
                            user_ids=user_ids, item_ids=item_ids)
