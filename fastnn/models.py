"""Keras's import path for models: ``from fastnn.models import Model, Sequential,
load_model, model_from_json`` (as ``keras.models``). Re-exports only."""
from .model import Model, Sequential
from .saving import load_model, model_from_json

__all__ = ["Model", "Sequential", "load_model", "model_from_json"]
