"""The command line: the main job (`xlayers conformance`) and the seed demo."""

import json

from xlayers.__main__ import main


def test_conformance_subset_writes_both_reports(tmp_path, capsys):
    assert main(["conformance", "--only", "conv2d/same-s2-d1-g1-k3x3-nhwc*", "--report", str(tmp_path / "r"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["meta"]["failed"] == 0 and len(report["records"]) == 2
    record = report["records"][0]
    assert {"id", "layer", "device", "dtype", "passed", "checks"} <= set(record)
    assert {"max_abs_error", "max_rel_error", "tolerance"} <= set(record["checks"]["x2k/output0"])
    assert "| conv2d/same-s2-d1-g1-k3x3-nhwc-9x10 | cpu | float32 | yes |" in (tmp_path / "r" / "report.md").read_text()
    assert "2 passed, 0 failed" in out


def test_conformance_unknown_pattern_and_missing_cuda(tmp_path, capsys):
    assert main(["conformance", "--only", "nothing-matches", "--report", str(tmp_path)]) == 2
    import torch

    if not torch.cuda.is_available():
        assert main(["conformance", "--device", "cuda", "--report", str(tmp_path)]) == 2


def test_demo_agrees_with_keras(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert out.count("Keras agrees") == 3 and "Output shape: (16, 26, 26, 32)" in out
