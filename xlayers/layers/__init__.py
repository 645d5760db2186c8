"""Layer families, one module each; every public layer is re-exported here and in `xlayers`.

A family adds its layers below, in its own block of imports and of ``__all__``.
"""

from .conv import Conv1D as Conv1D
from .conv import Conv2D as Conv2D
from .conv import Conv3D as Conv3D
from .core import Dense as Dense
from .core import Masking as Masking
from .recurrent import LSTM as LSTM

# pooling

# reshaping

# normalization

# activations

# regularization

# merging

# image

# preprocessing

__all__ = [
    # conv
    "Conv1D",
    "Conv2D",
    "Conv3D",
    # core
    "Dense",
    "Masking",
    # recurrent
    "LSTM",
    # pooling
    # reshaping
    # normalization
    # activations
    # regularization
    # merging
    # image
    # preprocessing
]
