"""l2o meta-training: the coordinatewise LSTM optimizer of Andrychowicz et al. 2016.

Trains learned optimizers on batched task families, evaluates them against tuned
hand-designed baselines and freezes them into weight files (DESIGN.md §2–3).
"""

__version__ = "1.0.0"

from .cpu import configure as _configure_cpu

_configure_cpu()  # before anything here imports torch
