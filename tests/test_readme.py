"""The README's Python examples run as written."""

import re
from pathlib import Path


def test_readme_python_blocks_run(capsys):
    text = (Path(__file__).parents[1] / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert "Total params" in capsys.readouterr().out
