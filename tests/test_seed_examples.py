"""The seed's three examples (../shared/seed/what-is-a-layer-in-tensorflow-2.md), run with
xlayers: torch tensors in place of `tf.random.normal`, every shape the document states."""

import torch

import xlayers


def test_example_1_dense(capsys):
    dense_layer = xlayers.Dense(units=128, activation="relu")
    input_data = torch.randn(32, 784)
    output_data = dense_layer(input_data)
    print(f"Input shape: {tuple(input_data.shape)}")
    print(f"Output shape: {tuple(output_data.shape)}")
    print(f"Layer weights shape: {tuple(dense_layer.kernel.shape)}")
    print(f"Layer biases shape: {tuple(dense_layer.bias.shape)}")
    assert capsys.readouterr().out.splitlines() == [
        "Input shape: (32, 784)",
        "Output shape: (32, 128)",
        "Layer weights shape: (784, 128)",
        "Layer biases shape: (128,)",
    ]
    assert bool((output_data >= 0).all())  # relu


def test_example_2_conv2d(capsys):
    conv_layer = xlayers.Conv2D(filters=32, kernel_size=(3, 3), activation="relu", input_shape=(28, 28, 3))
    assert conv_layer.built  # `input_shape=` builds at construction, as the seed says
    image_data = torch.randn(16, 28, 28, 3)
    output_data = conv_layer(image_data)
    print(f"Input shape: {tuple(image_data.shape)}")
    print(f"Output shape: {tuple(output_data.shape)}")
    print(f"Layer weights shape: {tuple(conv_layer.kernel.shape)}")
    print(f"Layer biases shape: {tuple(conv_layer.bias.shape)}")
    assert capsys.readouterr().out.splitlines() == [
        "Input shape: (16, 28, 28, 3)",
        "Output shape: (16, 26, 26, 32)",
        "Layer weights shape: (3, 3, 3, 32)",
        "Layer biases shape: (32,)",
    ]


def test_example_3_lstm(capsys):
    lstm_layer = xlayers.LSTM(units=64, return_sequences=True)
    sequence_data = torch.randn(8, 20, 10)
    output_data = lstm_layer(sequence_data)
    print(f"Input shape: {tuple(sequence_data.shape)}")
    print(f"Output shape: {tuple(output_data.shape)}")
    for gate in "ifco":
        print(f"Layer weights shape (W_{gate}): {tuple(getattr(lstm_layer, f'kernel_{gate}').shape)}")
    for gate in "ifco":
        print(f"Layer biases shape (b_{gate}): {tuple(getattr(lstm_layer, f'bias_{gate}').shape)}")
    assert capsys.readouterr().out.splitlines() == [
        "Input shape: (8, 20, 10)",
        "Output shape: (8, 20, 64)",
        "Layer weights shape (W_i): (10, 64)",
        "Layer weights shape (W_f): (10, 64)",
        "Layer weights shape (W_c): (10, 64)",
        "Layer weights shape (W_o): (10, 64)",
        "Layer biases shape (b_i): (64,)",
        "Layer biases shape (b_f): (64,)",
        "Layer biases shape (b_c): (64,)",
        "Layer biases shape (b_o): (64,)",
    ]
