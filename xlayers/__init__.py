"""xlayers: Keras layer semantics as PyTorch modules.

TF-style channels-last shapes, Keras argument names and defaults, lazy build from the
first input, and weights laid out as Keras lays them out.
"""

from . import activations as activations
from . import constraints as constraints
from . import initializers as initializers
from . import layers as layers
from . import regularizers as regularizers
from .functional import Functional as Functional
from .functional import Input as Input
from .functional import InputLayer as InputLayer
from .functional import KerasTensor as KerasTensor
from .functional import Model as Model
from .layer import InputSpec as InputSpec
from .layer import Layer as Layer
from .layer import apply_constraints as apply_constraints
from .layer import clear_session as clear_session
from .layers import *  # noqa: F403  (every public layer; the list is `xlayers.layers.__all__`)
from .layout import Weight as Weight
from .models import Sequential as Sequential
from .saving import from_keras as from_keras
from .saving import load_keras as load_keras
from .saving import save_keras as save_keras
from .saving import to_keras as to_keras

__version__ = "0.1.0"

__all__ = [
    "Functional",
    "Input",
    "InputLayer",
    "InputSpec",
    "KerasTensor",
    "Layer",
    "Model",
    "Sequential",
    "Weight",
    "activations",
    "apply_constraints",
    "clear_session",
    "constraints",
    "from_keras",
    "initializers",
    "layers",
    "load_keras",
    "regularizers",
    "save_keras",
    "to_keras",
    *layers.__all__,
]
