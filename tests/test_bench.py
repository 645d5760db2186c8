"""The benchmark (`xlayers bench`): a quick run's report, its ratios and its agreement checks, recorded
failures, and frameworks that are not installed (a reason, not a crash)."""

import json

import pytest

from xlayers import bench
from xlayers.__main__ import main

QUICK = ["--quick", "--threads", "1", "--cases", bench.QUICK_CASES]


def test_registry_names_are_unique_and_every_case_has_a_native_or_a_reason():
    names = [case.name for case in bench.CASES]
    assert len(names) == len(set(names))
    assert all(case.native is not None or case.note.startswith("n/a") for case in bench.CASES)
    assert [case.name for case in bench.select(bench.QUICK_CASES)] == ["dense-32x784-128-relu", "conv2d-16x28x28x3-32-3x3-valid"]


def test_quick_run_reports_times_ratios_flops_and_agreement(tmp_path, capsys):
    assert main(["bench", *QUICK, "--candidates", "xlayers,native", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "bench.json").read_text())
    assert (tmp_path / "bench.md").read_text().startswith("| case | pass | xlayers ms | native ms | xlayers/native")
    printed = capsys.readouterr()
    assert "| dense-32x784-128-relu | train |" in printed.out
    assert "bench: Torch 2/2 conv2d-16x28x28x3-32-3x3-valid" in printed.err  # the workers' progress, passed on
    assert report["frameworks"]["torch"]["threads"] == 1 and report["frameworks"]["torch"]["peak_gflops"] > 0
    assert set(report["cases"]) == {case.name for case in bench.select(bench.QUICK_CASES)}
    for case in report["cases"].values():
        assert set(case["passes"]) == {"forward", "train"}
        for pass_name, results in case["passes"].items():
            for cell in results.values():
                assert cell["min_ms"] <= cell["median_ms"] <= cell["max_ms"] and cell["repeats"] >= 3
                assert cell["gflops"] == pytest.approx(case["flops"][pass_name] / (cell["median_ms"] * 1e6))
            ratio = results["xlayers"]["median_ms"] / results["native"]["median_ms"]
            assert case["ratios"][pass_name] == {"xlayers/native": pytest.approx(ratio)}
        assert case["flops"]["train"] > case["flops"]["forward"] > 0
        assert "peak_memory_mib" in case["passes"]["train"]["xlayers"]
        assert case["agreement"]["native"]["passed"], case["agreement"]  # same weights, same numbers


def test_framework_not_installed_is_a_reason_in_the_report(tmp_path, monkeypatch):
    (tmp_path / "tensorflow.py").write_text("raise ImportError('No module named tensorflow (test)')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    out = tmp_path / "out"
    assert main(["bench", *QUICK, "--cases", "dense-*", "--candidates", "keras-tf", "--out", str(out)]) == 0
    report = json.loads((out / "bench.json").read_text())
    assert "not installed" in report["frameworks"]["keras-tf"]["unavailable"]
    case = report["cases"]["dense-32x784-128-relu"]
    assert "not installed" in case["passes"]["forward"]["keras-tf"]["error"]
    assert case["ratios"]["forward"] == {"xlayers/keras-tf": None}
    assert "keras-tf" in (out / "bench.md").read_text()  # the reason is printed under the table


def test_a_failing_candidate_is_recorded_and_the_others_are_timed():
    def broken():
        raise RuntimeError("compile failed\nsecond line")

    results = bench.interleaved({"ok": lambda: None, "broken": broken}, lambda: None, bench.Budget.quick())
    assert results["broken"] == {"error": "RuntimeError: compile failed"}
    assert results["ok"]["repeats"] >= 3


def test_unknown_candidate_or_case_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="unknown candidates"):
        main(["bench", "--candidates", "xlayers,jax", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="no case matches"):
        main(["bench", "--cases", "nothing-*", "--out", str(tmp_path)])


def test_reuse_fills_the_candidates_left_out_and_recomputes_the_ratios(tmp_path):
    earlier = {"device": "cpu", "threads": 1, "frameworks": {"keras-tf": {"peak_gflops": 1.0}},
               "cases": {"c": {"passes": {"forward": {"xlayers": {"median_ms": 9.0}, "keras-tf": {"median_ms": 3.0}}},
                               "agreement": {"keras-tf": {"passed": True}}}}}
    report = {"device": "cpu", "threads": 1, "frameworks": {"torch": {}}, "notes": [],
              "cases": {"c": {"passes": {"forward": {"xlayers": {"median_ms": 2.0}, "native": {"median_ms": 1.0}}},
                              "agreement": {"native": {"passed": True}}}}}
    bench.reuse(report, earlier, "old.json")
    case = report["cases"]["c"]
    assert case["passes"]["forward"]["keras-tf"] == {"median_ms": 3.0, "reused": True}
    assert case["passes"]["forward"]["xlayers"] == {"median_ms": 2.0}  # this run's own time stays
    assert case["ratios"]["forward"] == {"xlayers/native": 2.0, "xlayers/keras-tf": pytest.approx(2 / 3)}
    assert case["agreement"]["keras-tf"] == {"passed": True} and report["frameworks"]["keras-tf"]["reused_from"] == "old.json"
    with pytest.raises(SystemExit, match="not comparable"):
        bench.reuse(report, {**earlier, "threads": 2}, "old.json")
