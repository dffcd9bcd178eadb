"""Keras-style text progress bar for training loops.

``Progbar`` only formats and writes text; it knows nothing about models.
On a terminal it redraws one line with ``\\r``, at most every ``interval``
seconds. In a Jupyter notebook (the stream is the kernel's stdout) it redraws
one display output in place instead (IPython's ``display`` with a display id,
imported only there), so the saved notebook holds one clean line per epoch,
not every redraw. When the output is not a terminal, or the environment
variable ``CI`` is set, it writes a single line when the bar finishes, so logs
are not filled with carriage returns.

With ``stateful_metrics="all"`` the values may be a lazy mapping (``fit``'s
logs, still on a device): the bar keeps the latest one and reads it only when
it draws, so a bar that is not redrawn costs no transfer from the device.
"""
from typing import Any
import os
import sys
import time
from collections.abc import Mapping

__all__ = ["Progbar", "is_dynamic_stream"]


def is_dynamic_stream(stream):
    """Whether ``\\r`` redraws work: a TTY, or a Jupyter kernel; never when ``CI`` is set."""
    if os.environ.get("CI"):
        return False
    if "ipykernel" in sys.modules:
        return True
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # closed stream
        return False


def _notebook_display(stream):
    """IPython's ``display`` when ``stream`` is a Jupyter kernel's output
    stream (where a display output can be redrawn in place), else None.
    IPython is imported only then: it is already loaded in a kernel."""
    if "ipykernel" not in sys.modules or not type(stream).__module__.startswith("ipykernel"):
        return None
    try:
        import importlib
        return importlib.import_module("IPython.display").display
    except ImportError:
        return None


def _format_value(v):
    try:
        v = float(v)
    except (TypeError, ValueError):
        return f" {v}"
    return f" {v:.4f}" if abs(v) > 1e-3 or v == 0 else f" {v:.4e}"


def _format_eta(seconds):
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    if seconds >= 60:
        return f"{seconds // 60}:{seconds % 60:02d}"
    return f"{seconds}s"


def _format_per_unit(seconds, unit):
    if seconds >= 1 or seconds == 0:
        return f"{seconds:.0f}s/{unit}"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/{unit}"
    return f"{seconds * 1e6:.0f}us/{unit}"


class Progbar:
    """Progress bar: ``step/total [=====>....] - ETA: 3s - loss: 0.1234``.

    Parameters
    ----------
    target : int or None
        Total number of steps; None if unknown.
    width : int
        Characters inside the brackets.
    verbose : int
        0 silent, 1 bar (one final line when not dynamic), 2 one final line.
    interval : float
        Minimum seconds between redraws of a dynamic bar.
    stateful_metrics : iterable of str
        Names shown as given; other values are averaged over the steps seen
        (weighted by step size), as Keras's Progbar does. ``"all"`` shows every
        value as given (use it when the values are already running means).
    unit_name : str
        Shown in the time per unit, e.g. ``"20ms/step"``.
    stream : file-like, default ``sys.stdout``
    dynamic : bool, optional
        Force ``\\r`` redraws on or off; default ``is_dynamic_stream(stream)``.
    prefix : str
        Put before the single final line of a non-dynamic bar, e.g. "Epoch 3/10".

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> bar = Progbar(2, stream=out, dynamic=False)
    >>> bar.update(1, {"loss": 0.5}); bar.update(2, {"loss": 0.3})
    >>> out.getvalue().startswith("2/2 - ")
    True
    """

    def __init__(self, target, width=30, verbose=1, interval=0.05, stateful_metrics=None,
                 unit_name="step", stream=None, dynamic=None, prefix=""):
        if target is not None and target < 0:
            raise ValueError(f"target must be a non-negative number of steps or None, "
                             f"got {target!r}")
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
        self.target, self.width, self.verbose = target, width, verbose
        self.interval, self.unit_name, self.prefix = interval, unit_name, prefix
        self.stream = stream if stream is not None else sys.stdout
        self.dynamic = is_dynamic_stream(self.stream) if dynamic is None else dynamic
        self.stateful_metrics = stateful_metrics if stateful_metrics == "all" else \
            set(stateful_metrics or ())
        self._clock = time.monotonic
        self._values = {}   # name -> [weighted sum, weight] or [value, 1] if stateful
        self._seen = 0
        self._start = self._clock()
        self._last_draw = None
        self._last_width = 0
        self._finalized = False
        self._unread = None  # the latest values of an "all"-stateful bar, read when drawn
        # In a notebook, a dynamic bar redraws a display output rather than "\r" lines.
        self._display: Any = _notebook_display(self.stream) if self.dynamic else None
        self._handle = None

    def _stateful(self, name):
        return self.stateful_metrics == "all" or name in self.stateful_metrics

    def _record(self, current, values):
        if self.stateful_metrics == "all" and isinstance(values, Mapping):
            self._unread = dict(values) if isinstance(values, dict) else values
            self._seen = current
            return
        self._read_latest()
        items = values.items() if isinstance(values, dict) else (values or ())
        step = max(current - self._seen, 1)
        for name, value in items:
            if self._stateful(name):
                self._values[name] = [value, 1]
            else:
                total = self._values.setdefault(name, [0.0, 0])
                total[0] += float(value) * step
                total[1] += step
        self._seen = current

    def _read_latest(self):
        if self._unread is not None:
            for name, value in dict(self._unread).items():
                self._values[name] = [value, 1]
            self._unread = None

    def _metrics_text(self):
        self._read_latest()
        parts = []
        for name, (total, count) in self._values.items():
            value = total if self._stateful(name) else total / max(count, 1)
            parts.append(f" - {name}:{_format_value(value)}")
        return "".join(parts)

    def _bar(self, current):
        if self.target is None:
            return f"{current:7d}/Unknown"
        digits = len(str(self.target))
        text = f"{current:{digits}d}/{self.target} ["
        done = min(current / self.target, 1.0) if self.target else 1.0
        filled = int(self.width * done)
        if filled > 0:
            text += "=" * (filled - 1) + (">" if current < self.target else "=")
        return text + "." * (self.width - filled) + "]"

    def update(self, current, values=None, finalize=None):
        """Set progress to ``current`` steps with ``values`` (dict or (name, value) pairs)."""
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        self._record(current, values)
        if self.verbose == 0 or self._finalized:
            return
        now = self._clock()
        if finalize:
            self._finalized = True
        if self.verbose == 1 and self.dynamic:
            if not finalize and self._last_draw is not None and \
                    now - self._last_draw < self.interval:
                return
            self._draw_dynamic(current, now, finalize)
            self._last_draw = now
        elif finalize:
            self._draw_final_line(current, now)

    def add(self, n, values=None):
        """Advance by ``n`` steps."""
        self.update(self._seen + n, values)

    def _timing(self, current, now):
        elapsed = now - self._start
        per_unit = elapsed / current if current else 0.0
        return elapsed, per_unit

    def _draw_dynamic(self, current, now, finalize):
        elapsed, per_unit = self._timing(current, now)
        line = self._bar(current)
        if finalize:
            line += f" - {elapsed:.0f}s {_format_per_unit(per_unit, self.unit_name)}"
        elif self.target is not None and current:
            line += f" - ETA: {_format_eta(per_unit * (self.target - current))}"
        line += self._metrics_text()
        if self._display is not None:
            self._draw_display(line)
            return
        pad = max(self._last_width - len(line), 0)
        self._last_width = len(line)
        self.stream.write("\r" + line + " " * pad + ("\n" if finalize else ""))
        self.stream.flush()

    def _draw_display(self, line):
        data = {"text/plain": line}
        if self._handle is None:
            self.stream.flush()  # what was printed before (the epoch header) comes first
            self._handle = self._display(data, raw=True, display_id=True)
        else:
            self._handle.update(data, raw=True)

    def _draw_final_line(self, current, now):
        elapsed, per_unit = self._timing(current, now)
        total = self.target if self.target is not None else current
        line = (f"{self.prefix} - " if self.prefix else "") + \
            f"{current}/{total} - {elapsed:.0f}s - " \
            f"{_format_per_unit(per_unit, self.unit_name)}" + self._metrics_text()
        self.stream.write(line + "\n")
        self.stream.flush()
