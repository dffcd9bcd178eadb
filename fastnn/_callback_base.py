"""The callback protocol of fastnn.callbacks (re-exported there): ``Callback``,
the base class whose hooks ``Model.fit`` calls, and ``_HOOKS``, their names.
"""
from ._types import Any


_HOOKS = (
    "on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
    "on_train_batch_begin", "on_train_batch_end", "on_test_begin", "on_test_end",
    "on_test_batch_begin", "on_test_batch_end", "on_predict_begin", "on_predict_end",
    "on_predict_batch_begin", "on_predict_batch_end",
)


class Callback:
    """Base class: every hook does nothing; override the ones you need.

    ``self.model`` and ``self.params`` (``epochs``, ``steps``, ``verbose`` …)
    are set by ``fit`` before ``on_train_begin``.
    """

    def __init__(self):
        self.model: Any = None  # the Model being trained, set by fit
        self.params = {}

    def set_model(self, model):
        """Attach the model being trained (``fit`` calls this).

        Parameters
        ----------
        model : Model
            The model; ``self.model`` from now on.
        """
        self.model = model

    def set_params(self, params):
        """Set ``self.params`` (``epochs``, ``steps``, ``verbose``, ...).

        Parameters
        ----------
        params : dict
            The run's settings.
        """
        self.params = dict(params or {})

    def on_train_begin(self, logs=None):
        """Called once before training.

        Parameters
        ----------
        logs : dict, optional
            Empty (Keras passes None or {}).
        """
        pass

    def on_train_end(self, logs=None):
        """Called once after training.

        Parameters
        ----------
        logs : dict, optional
            The last epoch's logs.
        """
        pass

    def on_epoch_begin(self, epoch, logs=None):
        """Called at the start of each epoch.

        Parameters
        ----------
        epoch : int
            The epoch index, from 0.
        logs : dict, optional
            Empty.
        """
        pass

    def on_epoch_end(self, epoch, logs=None):
        """Called at the end of each epoch; set ``self.model.stop_training = True`` to stop.

        Parameters
        ----------
        epoch : int
            The epoch index, from 0.
        logs : dict, optional
            The epoch's ``loss`` and metrics, and ``val_`` ones with validation.
        """
        pass

    def on_batch_begin(self, batch, logs=None):
        """Keras 2 name; ``on_train_batch_begin`` calls it by default.

        Parameters
        ----------
        batch : int
            The batch index within the epoch.
        logs : dict, optional
            Empty.
        """

    def on_batch_end(self, batch, logs=None):
        """Keras 2 name; ``on_train_batch_end`` calls it by default.

        Parameters
        ----------
        batch : int
            The batch index within the epoch.
        logs : dict, optional
            The batch's ``loss`` and metrics.
        """

    def on_train_batch_begin(self, batch, logs=None):
        """Called before each training batch.

        Parameters
        ----------
        batch : int
            The batch index within the epoch, from 0.
        logs : dict, optional
            Empty.
        """
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch, logs=None):
        """Called after each training batch.

        Parameters
        ----------
        batch : int
            The batch index within the epoch, from 0.
        logs : dict, optional
            The batch's ``loss`` and metrics (reading them fetches them from the backend).
        """
        self.on_batch_end(batch, logs)

    def on_test_begin(self, logs=None):
        """Called before an evaluation.

        Keras's hook, kept so that Keras callbacks run; fastnn's
        ``evaluate``/``predict`` do not call it yet.

        Parameters
        ----------
        logs : dict, optional
            Empty.
        """
        pass

    def on_test_end(self, logs=None):
        """Called after an evaluation.

        Keras's hook, kept so that Keras callbacks run; fastnn's
        ``evaluate``/``predict`` do not call it yet.

        Parameters
        ----------
        logs : dict, optional
            Its ``loss`` and metrics.
        """
        pass

    def on_test_batch_begin(self, batch, logs=None):
        """Called before each evaluation batch.

        Keras's hook, kept so that Keras callbacks run; fastnn's
        ``evaluate``/``predict`` do not call it yet.

        Parameters
        ----------
        batch : int
            The batch index within the evaluation, from 0.
        logs : dict, optional
            Empty.
        """
        pass

    def on_test_batch_end(self, batch, logs=None):
        """Called after each evaluation batch.

        Keras's hook, kept so that Keras callbacks run; fastnn's
        ``evaluate``/``predict`` do not call it yet.

        Parameters
        ----------
        batch : int
            The batch index within the evaluation, from 0.
        logs : dict, optional
            The batch's ``loss`` and metrics.
        """
        pass

    def on_predict_begin(self, logs=None):
        """Called before ``predict``.

        Keras's hook, kept so that Keras callbacks run; fastnn's
        ``evaluate``/``predict`` do not call it yet.

        Parameters
        ----------
        logs : dict, optional
            Empty.
        """
        pass

    def on_predict_end(self, logs=None):
        """Called after ``predict``.

        Keras's hook, kept so that Keras callbacks run; fastnn's
        ``evaluate``/``predict`` do not call it yet.

        Parameters
        ----------
        logs : dict, optional
            Empty.
        """
        pass

    def on_predict_batch_begin(self, batch, logs=None):
        """Called before each ``predict`` batch.

        Keras's hook, kept so that Keras callbacks run; fastnn's
        ``evaluate``/``predict`` do not call it yet.

        Parameters
        ----------
        batch : int
            The batch index within the prediction, from 0.
        logs : dict, optional
            Empty.
        """
        pass

    def on_predict_batch_end(self, batch, logs=None):
        """Called after each ``predict`` batch.

        Keras's hook, kept so that Keras callbacks run; fastnn's
        ``evaluate``/``predict`` do not call it yet.

        Parameters
        ----------
        batch : int
            The batch index within the prediction, from 0.
        logs : dict, optional
            Empty.
        """
        pass

