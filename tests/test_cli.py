"""The command line: the main job (`xlayers conformance`) and the seed demo."""

import json

from xlayers.__main__ import main


def test_conformance_subset_writes_both_reports(tmp_path, capsys):
    assert main(["conformance", "--only", "conv2d/same-s2-d1-g1-k*-nhwc*", "--report", str(tmp_path / "r"), "--no-progress", "--workers", "1"]) == 0
    out = capsys.readouterr().out
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["meta"]["failed"] == 0 and len(report["records"]) == 2
    record = report["records"][0]
    assert {"id", "layer", "device", "dtype", "passed", "checks"} <= set(record)
    assert {"max_abs_error", "max_rel_error", "tolerance"} <= set(record["checks"]["x2k/output0"])
    assert "| conv2d/same-s2-d1-g1-k3x3-nhwc-9x10 | cpu | float32 | yes |" in (tmp_path / "r" / "report.md").read_text()
    assert "2 passed, 0 failed" in out
    onnx = [r["onnx"] for r in report["records"]]  # one export for the configuration, the other record names it
    assert onnx[0].startswith("ok (") and onnx[1] == "see conv2d/same-s2-d1-g1-k3x3-nhwc-9x10", onnx


def test_conformance_workers_give_the_same_records_in_order(tmp_path):
    args = ["conformance", "--only", "dense/rank2*", "--no-progress", "--no-onnx"]
    assert main([*args, "--report", str(tmp_path / "one"), "--workers", "1"]) == 0
    assert main([*args, "--report", str(tmp_path / "two"), "--workers", "2"]) == 0
    one, two = (json.loads((tmp_path / d / "report.json").read_text()) for d in ("one", "two"))
    assert two["meta"]["workers"] == 2 and [r["id"] for r in one["records"]] == [r["id"] for r in two["records"]]
    for a, b in zip(one["records"], two["records"]):
        assert a["checks"] == b["checks"] and a["onnx"] == b["onnx"] and not a["onnx"].startswith(("ok", "see"))


def test_conformance_refuses_an_unwritable_report_directory_before_running(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["conformance", "--only", "dense/*", "--report", str(blocker / "r")]) == 2
    assert "nothing was run" in capsys.readouterr().err


def test_conformance_unknown_pattern_and_missing_cuda(tmp_path, capsys):
    assert main(["conformance", "--only", "nothing-matches", "--report", str(tmp_path)]) == 2
    import torch

    if not torch.cuda.is_available():
        assert main(["conformance", "--device", "cuda", "--report", str(tmp_path)]) == 2


def test_demo_agrees_with_keras(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert out.count("Keras agrees") == 3 and "Output shape: (16, 26, 26, 32)" in out


def test_no_command_prints_the_usage_and_help_shows_defaults(capsys):
    assert main([]) == 2
    assert "{conformance,demo,port,bench}" in capsys.readouterr().err
    try:
        main(["conformance", "--help"])
    except SystemExit as exit:
        assert exit.code == 0
    assert "(default: conformance-report)" in " ".join(capsys.readouterr().out.split())


def test_report_files_respect_the_umask(tmp_path):
    import os

    old = os.umask(0o027)
    try:
        assert main(["conformance", "--only", "masking/zeros-right", "--report", str(tmp_path), "--no-progress", "--workers", "1", "--no-onnx"]) == 0
    finally:
        os.umask(old)
    for name in ("report.json", "report.md"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o640, name
