import io
import sys

import pytest

from fastnn.progress import Progbar, is_dynamic_stream


class FakeClock:
    def __init__(self, step=0.0):
        self.now, self.step = 0.0, step

    def __call__(self):
        self.now += self.step
        return self.now


def make_bar(target, clock_step=0.0, **kwargs):
    out = io.StringIO()
    bar = Progbar(target, stream=out, **kwargs)
    bar._clock = FakeClock(clock_step)
    bar._start = 0.0
    return bar, out


def test_dynamic_bar_format_and_final_line():
    bar, out = make_bar(4, clock_step=0.5, dynamic=True, interval=0)
    for i in range(1, 5):
        bar.update(i, {"loss": 0.5, "accuracy": 0.25})
    frames = out.getvalue().split("\r")[1:]
    assert len(frames) == 4
    assert frames[0].startswith("1/4 [======>.......................] - ETA: 2s - loss: 0.5000"
                                " - accuracy: 0.2500")
    assert frames[-1].startswith("4/4 [==============================] - 2s 500ms/step - "
                                 "loss: 0.5000 - accuracy: 0.2500")
    assert out.getvalue().endswith("\n") and out.getvalue().count("\n") == 1


def test_non_dynamic_prints_one_line_at_the_end():
    bar, out = make_bar(100, clock_step=0.01, dynamic=False, prefix="Epoch 2/5")
    for i in range(1, 101):
        bar.update(i, {"loss": 1.0})
    text = out.getvalue()
    assert "\r" not in text and text.count("\n") == 1
    assert text.startswith("Epoch 2/5 - 100/100 - 1s - 10ms/step - loss: 1.0000")


def test_verbose_2_and_0():
    bar, out = make_bar(3, dynamic=True, verbose=2)
    for i in range(1, 4):
        bar.update(i, {"loss": 2.0})
    assert "\r" not in out.getvalue() and out.getvalue().count("\n") == 1
    bar, out = make_bar(3, dynamic=True, verbose=0)
    for i in range(1, 4):
        bar.update(i, {"loss": 2.0})
    assert out.getvalue() == ""


def test_averaging_and_stateful_metrics():
    bar, out = make_bar(3, dynamic=False, stateful_metrics=["lr"])
    bar.update(1, {"loss": 1.0, "lr": 0.1})
    bar.update(3, {"loss": 4.0, "lr": 0.01})  # a step of 2: weight 2
    assert "loss: 3.0000" in out.getvalue() and "lr: 0.0100" in out.getvalue()
    bar, out = make_bar(2, dynamic=False, stateful_metrics="all")
    bar.update(1, [("loss", 1.0)])
    bar.update(2, [("loss", 4.0)])
    assert "loss: 4.0000" in out.getvalue()


def test_small_values_use_scientific_notation():
    bar, out = make_bar(1, dynamic=False)
    bar.update(1, {"loss": 2.5e-5, "zero": 0.0})
    assert "loss: 2.5000e-05" in out.getvalue() and "zero: 0.0000" in out.getvalue()


def test_throttled_redraws():
    # 1000 steps of 1 ms with interval 0.05 s: about one redraw per 50 steps.
    bar, out = make_bar(1000, clock_step=0.001, dynamic=True, interval=0.05)
    for i in range(1, 1001):
        bar.update(i, {"loss": 0.1})
    redraws = out.getvalue().count("\r")
    assert 15 <= redraws <= 25
    assert out.getvalue().rstrip().split("\r")[-1].startswith("1000/1000")


def test_shorter_line_overwrites_longer_one():
    bar, out = make_bar(3, dynamic=True, interval=0)
    bar.update(1, {"loss": 123456.0})
    bar.update(2, {"loss": 1.0})
    first, second = out.getvalue().split("\r")[1:3]
    assert len(second) == len(first)


def test_unknown_target_and_finalize():
    bar, out = make_bar(None, dynamic=True, interval=0)
    bar.update(5, {"loss": 1.0})
    assert "5/Unknown" in out.getvalue()
    bar.update(7, {"loss": 1.0}, finalize=True)
    assert out.getvalue().endswith("\n")
    bar, out = make_bar(None, dynamic=False)
    bar.update(7, finalize=True)
    assert out.getvalue().startswith("7/7 - ")


def test_nothing_after_finalize_and_add():
    bar, out = make_bar(2, dynamic=False)
    bar.add(1)
    bar.add(1, {"loss": 1.0})
    text = out.getvalue()
    bar.update(2, {"loss": 5.0}, finalize=True)
    assert out.getvalue() == text


def test_eta_formats():
    bar, out = make_bar(1000, clock_step=100.0, dynamic=True, interval=0)
    bar.update(1)  # 100 s per step, 999 steps left
    assert "ETA: 27:45:00" in out.getvalue()
    bar, out = make_bar(3, clock_step=50.0, dynamic=True, interval=0)
    bar.update(1)
    assert "ETA: 1:40 " in out.getvalue() + " "


def test_bad_arguments():
    with pytest.raises(ValueError, match="verbose"):
        Progbar(3, verbose=3)
    with pytest.raises(ValueError, match="target"):
        Progbar(-1)


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_dynamic_detection(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    assert is_dynamic_stream(Tty()) is True
    assert is_dynamic_stream(io.StringIO()) is False
    monkeypatch.setitem(sys.modules, "ipykernel", object())
    assert is_dynamic_stream(io.StringIO()) is True
    monkeypatch.setenv("CI", "true")
    assert is_dynamic_stream(Tty()) is False
    assert Progbar(3, stream=Tty()).dynamic is False


def test_default_stream_is_stdout(capsys):
    bar = Progbar(1, dynamic=False)
    bar.update(1, {"loss": 1.0})
    assert capsys.readouterr().out.startswith("1/1 - ")


def test_in_a_notebook_the_bar_redraws_one_display_output(monkeypatch):
    # A Jupyter kernel's stdout (ipykernel.iostream.OutStream) gets one display
    # output redrawn in place: the saved notebook keeps the last frame only,
    # no "\r" frames. Faked here: a stream class from an "ipykernel" module and
    # a recording IPython.display.
    import types

    shown = []

    class Handle:
        def update(self, data, raw=False):
            shown.append(("update", data["text/plain"], raw))

    def display(data, raw=False, display_id=None):
        shown.append(("display", data["text/plain"], raw, display_id))
        return Handle()

    class OutStream(io.StringIO):
        flushed = 0

        def flush(self):
            OutStream.flushed += 1

    OutStream.__module__ = "ipykernel.iostream"
    ipython_display = types.ModuleType("IPython.display")
    ipython_display.display = display
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    monkeypatch.setitem(sys.modules, "IPython.display", ipython_display)
    monkeypatch.delenv("CI", raising=False)
    out = OutStream()
    bar = Progbar(3, stream=out, interval=0)
    assert bar.dynamic
    for i in range(1, 4):
        bar.update(i, {"loss": 0.5})
    assert out.getvalue() == ""  # nothing written to the stream itself
    assert shown[0][0] == "display" and shown[0][2:] == (True, True)
    assert shown[0][1].startswith("1/3 [") and OutStream.flushed >= 1
    assert [s[0] for s in shown[1:]] == ["update", "update"]
    assert shown[-1][1].startswith("3/3 [==============================] - ")
    assert "loss: 0.5000" in shown[-1][1] and "\r" not in "".join(s[1] for s in shown)
    # Any other stream in the kernel (a log file) keeps the text bar.
    other = io.StringIO()
    Progbar(2, stream=other, interval=0).update(2)
    assert other.getvalue().startswith("\r2/2 [") and len(shown) == 3
