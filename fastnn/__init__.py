"""fastnn: a fast, readable deep-learning library for NumPy users.

This module holds the public API only (re-exports); nothing is defined here.
"""
from .backend import get_backend, set_backend, use_backend

__version__ = "0.1.0"
