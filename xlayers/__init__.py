"""xlayers: Keras layer semantics as PyTorch modules.

TF-style channels-last shapes, Keras argument names and defaults, lazy build from the
first input, and weights laid out as Keras lays them out.
"""

from . import activations as activations
from . import constraints as constraints
from . import initializers as initializers
from . import regularizers as regularizers
from .layer import InputSpec as InputSpec
from .layer import Layer as Layer
from .layer import apply_constraints as apply_constraints
from .layer import clear_session as clear_session
from .layers.conv import Conv1D as Conv1D
from .layers.conv import Conv2D as Conv2D
from .layers.conv import Conv3D as Conv3D
from .layers.core import Dense as Dense
from .layers.core import Masking as Masking
from .layers.recurrent import LSTM as LSTM
from .layout import Weight as Weight
from .models import Sequential as Sequential

__version__ = "0.1.0"

__all__ = [
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "Dense",
    "InputSpec",
    "LSTM",
    "Layer",
    "Masking",
    "Sequential",
    "Weight",
    "activations",
    "apply_constraints",
    "clear_session",
    "constraints",
    "initializers",
    "regularizers",
]
