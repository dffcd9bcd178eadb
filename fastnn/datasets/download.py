"""Downloads into the data cache: the one place fastnn touches the network.

``fetch(remote, dest)`` streams one file from its canonical URL (or a mirror)
into a temporary file beside ``dest``, hashes it while streaming, checks the
length and the checksum, and only then renames it to ``dest``: a failed or
interrupted download never leaves a file under the name the loaders look for.
What each data set is (names, URLs, hashes) lives with its loader
(``mnist.py``, ``fastnn/recsys/movielens.py``); parsing stays there too.
"""
import glob
import hashlib
import http.client
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import NamedTuple, Optional, Tuple

from ..progress import Progbar

__all__ = ["RemoteFile", "DownloadError", "data_home", "fetch", "MIRROR_ENV"]

#: Environment variable naming a base URL (``https://``, ``http://`` or
#: ``file://``) laid out as ``<base>/<subdir>/<name>``, tried instead of the
#: canonical locations: an offline copy, a company mirror, a test server.
MIRROR_ENV = "FASTNN_DATA_MIRROR"
_CHUNK = 1 << 16
DEFAULT_TIMEOUT = 60.0
#: A temporary ``.part`` file not written to for this long belongs to a
#: download whose process died (killed, power cut): the next download removes it.
STALE_PART_SECONDS = 3600.0


class RemoteFile(NamedTuple):
    """One downloadable file: where it comes from and how to recognise it.

    ``subdir``/``name`` is its place under a mirror; ``urls`` are tried in
    order (canonical location first). ``sha256`` is checked on every
    download; ``md5`` only stands in where no SHA-256 is published (the
    docstring of the data set says so). ``size`` is the byte count, if known.
    """
    subdir: str
    name: str
    urls: Tuple[str, ...]
    sha256: Optional[str] = None
    md5: Optional[str] = None
    size: Optional[int] = None


class DownloadError(OSError):
    """A download failed: no network, an HTTP error, a short body, a wrong
    checksum. The message names the file, the URL and where the file goes."""


def data_home():
    """The cache folder: ``$FASTNN_DATA``, else ``~/.cache/fastnn-data``."""
    return os.environ.get("FASTNN_DATA") or os.path.join(
        os.path.expanduser("~"), ".cache", "fastnn-data")


def _urls(remote, base_url):
    if base_url:
        return (base_url.rstrip("/") + "/" + remote.name,)
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        return (f"{mirror.rstrip('/')}/{remote.subdir}/{remote.name}",)
    return remote.urls


def manual_hint(remote, dest):
    """What to do without network: the file, its folder and its URL."""
    return (f"To install it by hand (no network here?), download {remote.urls[0]} and put "
            f"it at {dest} (folder {os.path.dirname(dest) or '.'})")


def fetch(remote, dest, base_url=None, verbose=1, timeout=DEFAULT_TIMEOUT, stream=None):
    """Download ``remote`` to the path ``dest`` unless ``dest`` already exists.

    A file already at ``dest`` is used as it is (files put there by hand or by
    ``shared/data/fetch.sh`` stay readable; the loaders check their
    structure). Otherwise each URL is tried in turn (``base_url``, else
    ``$FASTNN_DATA_MIRROR``, else the canonical ones); the body goes to a
    temporary file in ``dest``'s folder, hashed while streaming, and is
    renamed to ``dest`` only when its length and checksum are right.

    Parameters
    ----------
    remote : RemoteFile
    dest : str
        Final path of the file.
    base_url : str, optional
        Folder URL holding ``remote.name``; replaces the canonical URLs.
    verbose : int
        0 silent; 1 a progress bar on ``stream`` (one line when it is not a
        terminal).
    timeout : float
        Seconds a connection or a read may stall before the try fails.
    stream : file-like, default ``sys.stderr``

    Returns
    -------
    str
        ``dest``.

    Raises
    ------
    DownloadError
        Every URL failed; the message gives each reason, the URL and where to
        put the file by hand.
    """
    dest = os.fspath(dest)
    if os.path.isfile(dest):
        return dest
    folder = os.path.dirname(dest) or "."
    os.makedirs(folder, exist_ok=True)
    stream = sys.stderr if stream is None else stream
    _remove_stale_parts(folder, remote.name)
    failures = []
    for url in _urls(remote, base_url):
        try:
            _download(url, remote, dest, folder, verbose, timeout, stream)
            return dest
        except DownloadError as e:
            failures.append(str(e))
    raise DownloadError(f"cannot download {remote.name}: " + "; ".join(failures) +
                        f". {manual_hint(remote, dest)}")


def _remove_stale_parts(folder, name):
    # A live download writes its .part every few seconds (or fails on its
    # timeout), so only files idle for an hour are taken for dead ones.
    now = time.time()
    for path in glob.glob(os.path.join(glob.escape(folder), f".{glob.escape(name)}.*.part")):
        try:
            if now - os.path.getmtime(path) > STALE_PART_SECONDS:
                os.unlink(path)
        except OSError:   # removed meanwhile by another process: fine
            pass


def _download(url, remote, dest, folder, verbose, timeout, stream):
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "fastnn (urllib)"})
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        e.close()
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}") from None
    except ValueError as e:   # not a URL urllib can open (a mirror without its scheme)
        raise DownloadError(f"{url}: {e}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise DownloadError(f"{url}: {reason} (no network?)") from None
    # The temporary name starts with a dot and sits in the destination folder,
    # so the final rename is atomic (same file system) and a loader never sees it.
    fd, tmp = tempfile.mkstemp(prefix=f".{remote.name}.", suffix=".part", dir=folder)
    try:
        with response, os.fdopen(fd, "wb") as out:
            got = _stream(url, response, out, remote, verbose, stream)
        _check(url, remote, got)
        os.replace(tmp, dest)
    except BaseException:
        # Any failure, Ctrl-C included, leaves no partial file behind.
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _stream(url, response, out, remote, verbose, stream):
    length = response.headers.get("Content-Length") if hasattr(response, "headers") else None
    expected = int(length) if length and length.isdigit() else remote.size
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    bar = None
    if verbose:
        size = f" ({expected / 1e6:.1f} MB)" if expected else ""
        stream.write(f"Downloading {url}{size}\n")
        bar = Progbar(None if expected is None else -(-expected // 1024), verbose=1,
                      unit_name="KiB", stream=stream)
    done = 0
    while True:
        try:
            chunk = response.read(_CHUNK)
        except http.client.IncompleteRead as e:
            done += len(e.partial)
            raise DownloadError(f"{url}: truncated download, the connection closed after "
                                f"{done} of {expected} bytes") from None
        except OSError as e:  # socket timeout, connection reset
            raise DownloadError(f"{url}: download interrupted after {done} bytes ({e})") \
                from None
        if not chunk:
            break
        out.write(chunk)
        sha256.update(chunk)
        md5.update(chunk)
        done += len(chunk)
        if bar is not None:
            bar.update(done // 1024)
    if expected is not None and done != expected:
        what = "truncated download" if done < expected else "download longer than announced"
        raise DownloadError(f"{url}: {what}: got {done} bytes, expected {expected}")
    if bar is not None:
        bar.update(-(-done // 1024), finalize=True)
    return {"size": done, "sha256": sha256.hexdigest(), "md5": md5.hexdigest()}


def _check(url, remote, got):
    # The strongest published hash decides; md5 only where no sha256 is known.
    algo = "sha256" if remote.sha256 is not None else "md5" if remote.md5 is not None else None
    if algo is not None and got[algo] != getattr(remote, algo):
        raise DownloadError(f"{url}: checksum mismatch: {algo} expected "
                            f"{getattr(remote, algo)}, got {got[algo]} ({got['size']} bytes)")
    if remote.size is not None and got["size"] != remote.size:
        raise DownloadError(f"{url}: got {got['size']} bytes, expected {remote.size}; the "
                            f"file is not the published one")
