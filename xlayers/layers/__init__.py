"""Layer families, one module each; every public layer is re-exported here and in `xlayers`.

A family adds its layers below, in its own block of imports and of ``__all__``.
"""

from .activations import ELU as ELU

# activations
from .activations import Activation as Activation
from .activations import LeakyReLU as LeakyReLU
from .activations import PReLU as PReLU
from .activations import ReLU as ReLU
from .activations import Softmax as Softmax

# applications (keras.applications' private layers)
from .applications import CustomScaleLayer as CustomScaleLayer
from .applications import LayerScale as LayerScale

# attention
from .attention import AdditiveAttention as AdditiveAttention
from .attention import Attention as Attention
from .attention import GroupQueryAttention as GroupQueryAttention
from .attention import MultiHeadAttention as MultiHeadAttention
from .conv import Conv1D as Conv1D
from .conv import Conv1DTranspose as Conv1DTranspose
from .conv import Conv2D as Conv2D
from .conv import Conv2DTranspose as Conv2DTranspose
from .conv import Conv3D as Conv3D
from .conv import Conv3DTranspose as Conv3DTranspose
from .conv import DepthwiseConv1D as DepthwiseConv1D
from .conv import DepthwiseConv2D as DepthwiseConv2D
from .conv import SeparableConv1D as SeparableConv1D
from .conv import SeparableConv2D as SeparableConv2D

# conv lstm
from .conv_lstm import ConvLSTM1D as ConvLSTM1D
from .conv_lstm import ConvLSTM2D as ConvLSTM2D
from .conv_lstm import ConvLSTM3D as ConvLSTM3D
from .core import Dense as Dense
from .core import EinsumDense as EinsumDense
from .core import Embedding as Embedding
from .core import Identity as Identity
from .core import Masking as Masking
from .core import ReversibleEmbedding as ReversibleEmbedding

# image
from .image import CenterCrop as CenterCrop
from .image import Resizing as Resizing
from .image import UpSampling1D as UpSampling1D
from .image import UpSampling2D as UpSampling2D
from .image import UpSampling3D as UpSampling3D

# merging
from .merging import Add as Add
from .merging import Average as Average
from .merging import Concatenate as Concatenate
from .merging import Dot as Dot
from .merging import Maximum as Maximum
from .merging import Minimum as Minimum
from .merging import Multiply as Multiply
from .merging import Subtract as Subtract
from .merging import add as add
from .merging import average as average
from .merging import concatenate as concatenate
from .merging import dot as dot
from .merging import maximum as maximum
from .merging import minimum as minimum
from .merging import multiply as multiply
from .merging import subtract as subtract

# normalization
from .normalization import BatchNormalization as BatchNormalization
from .normalization import GroupNormalization as GroupNormalization
from .normalization import LayerNormalization as LayerNormalization
from .normalization import RMSNormalization as RMSNormalization
from .normalization import UnitNormalization as UnitNormalization

# pooling
from .pooling import AdaptiveAveragePooling1D as AdaptiveAveragePooling1D
from .pooling import AdaptiveAveragePooling2D as AdaptiveAveragePooling2D
from .pooling import AdaptiveAveragePooling3D as AdaptiveAveragePooling3D
from .pooling import AdaptiveMaxPooling1D as AdaptiveMaxPooling1D
from .pooling import AdaptiveMaxPooling2D as AdaptiveMaxPooling2D
from .pooling import AdaptiveMaxPooling3D as AdaptiveMaxPooling3D
from .pooling import AveragePooling1D as AveragePooling1D
from .pooling import AveragePooling2D as AveragePooling2D
from .pooling import AveragePooling3D as AveragePooling3D
from .pooling import AvgPool1D as AvgPool1D
from .pooling import AvgPool2D as AvgPool2D
from .pooling import AvgPool3D as AvgPool3D
from .pooling import GlobalAveragePooling1D as GlobalAveragePooling1D
from .pooling import GlobalAveragePooling2D as GlobalAveragePooling2D
from .pooling import GlobalAveragePooling3D as GlobalAveragePooling3D
from .pooling import GlobalAvgPool1D as GlobalAvgPool1D
from .pooling import GlobalAvgPool2D as GlobalAvgPool2D
from .pooling import GlobalAvgPool3D as GlobalAvgPool3D
from .pooling import GlobalMaxPool1D as GlobalMaxPool1D
from .pooling import GlobalMaxPool2D as GlobalMaxPool2D
from .pooling import GlobalMaxPool3D as GlobalMaxPool3D
from .pooling import GlobalMaxPooling1D as GlobalMaxPooling1D
from .pooling import GlobalMaxPooling2D as GlobalMaxPooling2D
from .pooling import GlobalMaxPooling3D as GlobalMaxPooling3D
from .pooling import MaxPool1D as MaxPool1D
from .pooling import MaxPool2D as MaxPool2D
from .pooling import MaxPool3D as MaxPool3D
from .pooling import MaxPooling1D as MaxPooling1D
from .pooling import MaxPooling2D as MaxPooling2D
from .pooling import MaxPooling3D as MaxPooling3D

# preprocessing
from .preprocessing import Normalization as Normalization
from .preprocessing import Rescaling as Rescaling
from .recurrent import GRU as GRU
from .recurrent import LSTM as LSTM
from .recurrent import SimpleRNN as SimpleRNN

# regularization
from .regularization import ActivityRegularization as ActivityRegularization
from .regularization import AlphaDropout as AlphaDropout
from .regularization import Dropout as Dropout
from .regularization import GaussianDropout as GaussianDropout
from .regularization import GaussianNoise as GaussianNoise
from .regularization import SpatialDropout1D as SpatialDropout1D
from .regularization import SpatialDropout2D as SpatialDropout2D
from .regularization import SpatialDropout3D as SpatialDropout3D

# reshaping
from .reshaping import Cropping1D as Cropping1D
from .reshaping import Cropping2D as Cropping2D
from .reshaping import Cropping3D as Cropping3D
from .reshaping import Flatten as Flatten
from .reshaping import Permute as Permute
from .reshaping import RepeatVector as RepeatVector
from .reshaping import Reshape as Reshape
from .reshaping import ZeroPadding1D as ZeroPadding1D
from .reshaping import ZeroPadding2D as ZeroPadding2D
from .reshaping import ZeroPadding3D as ZeroPadding3D

# rnn cells
from .rnn_cells import RNN as RNN
from .rnn_cells import GRUCell as GRUCell
from .rnn_cells import LSTMCell as LSTMCell
from .rnn_cells import SimpleRNNCell as SimpleRNNCell
from .rnn_cells import StackedRNNCells as StackedRNNCells

# wrappers
from .wrappers import Bidirectional as Bidirectional
from .wrappers import TimeDistributed as TimeDistributed

__all__ = [
    # applications
    "CustomScaleLayer",
    "LayerScale",
    # wrappers
    "Bidirectional",
    "TimeDistributed",
    # attention
    "AdditiveAttention",
    "Attention",
    "GroupQueryAttention",
    "MultiHeadAttention",
    # rnn cells
    "RNN",
    "GRUCell",
    "LSTMCell",
    "SimpleRNNCell",
    "StackedRNNCells",
    # conv lstm
    "ConvLSTM1D",
    "ConvLSTM2D",
    "ConvLSTM3D",
    # conv
    "Conv1D",
    "Conv2D",
    "Conv3D",
    "Conv1DTranspose",
    "Conv2DTranspose",
    "Conv3DTranspose",
    "DepthwiseConv1D",
    "DepthwiseConv2D",
    "SeparableConv1D",
    "SeparableConv2D",
    # core
    "Dense",
    "EinsumDense",
    "Embedding",
    "Identity",
    "Masking",
    "ReversibleEmbedding",
    # recurrent
    "GRU",
    "LSTM",
    "SimpleRNN",
    # pooling
    "AdaptiveAveragePooling1D",
    "AdaptiveAveragePooling2D",
    "AdaptiveAveragePooling3D",
    "AdaptiveMaxPooling1D",
    "AdaptiveMaxPooling2D",
    "AdaptiveMaxPooling3D",
    "AveragePooling1D",
    "AveragePooling2D",
    "AveragePooling3D",
    "AvgPool1D",
    "AvgPool2D",
    "AvgPool3D",
    "GlobalAveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalAveragePooling3D",
    "GlobalAvgPool1D",
    "GlobalAvgPool2D",
    "GlobalAvgPool3D",
    "GlobalMaxPool1D",
    "GlobalMaxPool2D",
    "GlobalMaxPool3D",
    "GlobalMaxPooling1D",
    "GlobalMaxPooling2D",
    "GlobalMaxPooling3D",
    "MaxPool1D",
    "MaxPool2D",
    "MaxPool3D",
    "MaxPooling1D",
    "MaxPooling2D",
    "MaxPooling3D",
    # reshaping
    "Cropping1D",
    "Cropping2D",
    "Cropping3D",
    "Flatten",
    "Permute",
    "RepeatVector",
    "Reshape",
    "ZeroPadding1D",
    "ZeroPadding2D",
    "ZeroPadding3D",
    # normalization
    "BatchNormalization",
    "GroupNormalization",
    "LayerNormalization",
    "RMSNormalization",
    "UnitNormalization",
    # activations
    "Activation",
    "ELU",
    "LeakyReLU",
    "PReLU",
    "ReLU",
    "Softmax",
    # regularization
    "ActivityRegularization",
    "AlphaDropout",
    "Dropout",
    "GaussianDropout",
    "GaussianNoise",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "SpatialDropout3D",
    # merging
    "Add",
    "Average",
    "Concatenate",
    "Dot",
    "Maximum",
    "Minimum",
    "Multiply",
    "Subtract",
    "add",
    "average",
    "concatenate",
    "dot",
    "maximum",
    "minimum",
    "multiply",
    "subtract",
    # image
    "CenterCrop",
    "Resizing",
    "UpSampling1D",
    "UpSampling2D",
    "UpSampling3D",
    # preprocessing
    "Normalization",
    "Rescaling",
]
