"""MovieLens by name: ``load_movielens("ml-100k")`` downloads GroupLens's zip on
first use, keeps only its ratings file in the data cache, and reads it with
``load_ratings``.

Layout: ``$FASTNN_DATA/<name>/<ratings file>`` (``ml-100k/u.data``,
``ml-1m/ratings.dat``, ``ml-10m/ratings.dat``, ``ml-latest-small/ratings.csv``),
the layout ``shared/data/fetch.sh`` writes, so its files count as cached.
Parsing stays in ``data.py``; downloading in ``fastnn.datasets.download``.
MovieLens may not be redistributed: nothing here ships data.
"""
import os
import shutil
import tempfile
import zipfile
from typing import NamedTuple

from ..datasets.download import DownloadError, RemoteFile, data_home, fetch
from .._types import Any, Optional, PathIn
from .data import Ratings, load_ratings

__all__ = ["MOVIELENS", "load_movielens", "fetch_movielens"]

_BASE = "https://files.grouplens.org/datasets/movielens/"


class _MovieLens(NamedTuple):
    archive: RemoteFile
    member: str      # the ratings file inside the zip
    ratings: str     # its name in $FASTNN_DATA/<name>/


def _zip(name, sha256=None, md5=None, size=None):
    return RemoteFile("movielens", f"{name}.zip", (f"{_BASE}{name}.zip",), sha256=sha256,
                      md5=md5, size=size)


# Sizes and SHA-256 of the zips as TensorFlow Datasets records them
# (tensorflow_datasets/url_checksums/movielens.txt). ml-10m is not in TFDS and
# no published SHA-256 of it was found: it is checked against the MD5 GroupLens
# publishes beside the zip (ml-10m.zip.md5, ce571fd5..., as quoted in
# eli-osherovich/papers_with_code datasets/movielens/dl_config.py), weaker but
# the only published one. ml-latest-small is a "latest" set GroupLens may
# regenerate; its 2018 zip is what the hash names (a new one fails the check).
MOVIELENS = {
    "ml-100k": _MovieLens(_zip("ml-100k", size=4924029, sha256=(
        "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229")),
        "ml-100k/u.data", "u.data"),
    "ml-1m": _MovieLens(_zip("ml-1m", size=5917549, sha256=(
        "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20")),
        "ml-1m/ratings.dat", "ratings.dat"),
    "ml-10m": _MovieLens(_zip("ml-10m", md5="ce571fd55effeba0271552578f2648bd"),
                         "ml-10M100K/ratings.dat", "ratings.dat"),
    "ml-latest-small": _MovieLens(_zip("ml-latest-small", size=978202, sha256=(
        "696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436")),
        "ml-latest-small/ratings.csv", "ratings.csv"),
}


def _spec(name):
    if name not in MOVIELENS:
        raise ValueError(f"unknown MovieLens data set {name!r}; expected one of "
                         f"{sorted(MOVIELENS)}")
    return MOVIELENS[name]


def ratings_path(name, data_dir=None):
    """Where the ratings file of ``name`` lives in the cache (present or not)."""
    spec = _spec(name)
    return os.path.join(data_home() if data_dir is None else os.fspath(data_dir), name,
                        spec.ratings)


def fetch_movielens(name="ml-100k", data_dir=None, url=None, verbose=1, timeout=None):
    """Make sure the ratings file of MovieLens ``name`` is in the cache and
    return its path; download and unpack the zip if it is not.

    The zip is checked (size and SHA-256; MD5 for ml-10m, see ``MOVIELENS``)
    and written atomically, then only its ratings file is copied out, by its
    known member name (no path from the archive is ever used, so a crafted zip
    cannot write outside the folder), to a temporary name renamed into place;
    the zip is deleted afterwards. A zip put by hand at
    ``<data_dir>/<name>/<name>.zip`` is unpacked without downloading.

    Parameters
    ----------
    name : {"ml-100k", "ml-1m", "ml-10m", "ml-latest-small"}
    data_dir : str, optional
        Cache root (default ``$FASTNN_DATA`` or ``~/.cache/fastnn-data``).
    url : str, optional
        Folder URL holding ``<name>.zip`` (a mirror), tried instead of
        files.grouplens.org (``$FASTNN_DATA_MIRROR`` serves ``movielens/<name>.zip``).
    verbose : int
        0 silent, 1 a progress bar on stderr.
    timeout : float, optional
        Seconds a connection or read may stall.

    Raises
    ------
    fastnn.datasets.DownloadError
        The download failed or the archive is not the expected one; the
        message names the file, its URL and where to put it by hand.
    """
    spec = _spec(name)
    target = ratings_path(name, data_dir)
    if os.path.isfile(target):
        return target
    folder = os.path.dirname(target)
    archive = os.path.join(folder, spec.archive.name)
    options = {} if timeout is None else {"timeout": timeout}
    try:
        fetch(spec.archive, archive, base_url=url, verbose=verbose, **options)
    except DownloadError as e:
        raise DownloadError(f"{e}; or put the unpacked {spec.member} at {target}") from None
    try:
        _extract_member(archive, spec.member, target)
    finally:
        os.unlink(archive)   # only the ratings file is kept; a bad zip is fetched anew
    return target


def _extract_member(archive, member, target):
    try:
        with zipfile.ZipFile(archive) as z:
            try:
                info = z.getinfo(member)
            except KeyError:
                names = z.namelist()
                raise DownloadError(
                    f"{archive}: no {member} in the archive (it holds "
                    f"{', '.join(names[:5])}{' ...' if len(names) > 5 else ''})") from None
            fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".part",
                                       dir=os.path.dirname(target))
            try:
                with z.open(info) as src, os.fdopen(fd, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
                os.replace(tmp, target)
            except BaseException:
                os.unlink(tmp)
                raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as e:
        raise DownloadError(f"{archive}: not a readable zip archive ({e})") from None


def load_movielens(name: str = "ml-100k", data_dir: Optional[PathIn] = None,
                   url: Optional[str] = None, download: bool = True, verbose: int = 1,
                   **kwargs: Any) -> Ratings:
    """Load a MovieLens ratings set by name, downloading it on first use.

    Parameters
    ----------
    name : {"ml-100k", "ml-1m", "ml-10m", "ml-latest-small"}
    data_dir : str, optional
        Cache root (default ``$FASTNN_DATA`` or ``~/.cache/fastnn-data``); the
        ratings file is ``<data_dir>/<name>/<u.data | ratings.dat | ratings.csv>``.
    url : str, optional
        Mirror folder URL holding ``<name>.zip``.
    download : bool
        Fetch the set when it is not cached (``fetch_movielens``); with False
        a missing file is a FileNotFoundError saying where to put it.
    verbose : int
        0 silent, 1 a download progress bar on stderr.
    **kwargs
        Passed to ``load_ratings`` (``rating_range``, ``duplicates``, ...).

    Returns
    -------
    Ratings

    Examples
    --------
    >>> from fastnn.recsys import load_movielens
    >>> ratings = load_movielens("ml-100k")            # doctest: +SKIP
    >>> ratings.shape, ratings.nnz                     # doctest: +SKIP
    ((943, 1682), 100000)
    """
    spec = _spec(name)
    if download:
        path = fetch_movielens(name, data_dir, url=url, verbose=verbose)
    else:
        path = ratings_path(name, data_dir)
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"MovieLens {name} not found: {path}. Call load_movielens({name!r}) to "
                f"download it, or download {spec.archive.urls[0]}, unzip it and put "
                f"{spec.member} at {path}")
    return load_ratings(path, **kwargs)
