"""The README's Python examples run as written."""

import re
from pathlib import Path


def test_readme_python_blocks_run(capsys, tmp_path, monkeypatch):
    text = (Path(__file__).parents[1] / "README.md").read_text()
    monkeypatch.chdir(tmp_path)  # the examples write files
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    assert "Total params" in out and "exported model.onnx" in out and (tmp_path / "model.onnx").exists()
