"""The command line's main job runs and agrees with Keras."""

from xlayers.__main__ import main


def test_demo_agrees_with_keras(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert out.count("Keras agrees") == 3 and "Output shape: (16, 26, 26, 32)" in out
