"""Porting at scale: VGG16 (138M parameters, 553 MB of float32) from a Keras ``.h5`` file to
sharded safetensors and back, against a plain copy of the same bytes on the same disk.

Targets: each step's peak RSS growth stays at no more than 1.5x the weights' size, and its wall
time within 2x of ``shutil.copyfile`` of the ``.h5`` file (same folder, same run). The machine
may be shared, so the steps run ``--repeats`` times, each round after a copy, and the figures
compared are the fastest of each (the median is printed too).

Stage 1 (a subprocess with Keras) builds ``keras.applications.VGG16(weights=None)`` with seeded
random weights, saves it as ``vgg16.h5`` and records Keras's output on one seeded image. Each
step then runs in a fresh subprocess in which TensorFlow and Keras cannot be imported, and
measures its own wall time and peak RSS growth (``VmHWM`` after the step less ``VmRSS`` before
it, from ``/proc/self/status``, after the imports); every timed step and copy starts after an
``os.sync()``, so none pays for the writeback of another:

- ``port``: ``xlayers.port.port("vgg16.h5", "vgg16.safetensors", max_shard_size=100 MB)``
  (read the ``.h5``, write ~100 MB shards and their index);
- ``load``: the architecture built from the ``.h5``'s config with uninitialised weights, then
  ``model.load_weights("vgg16.safetensors.index.json")``;
- ``save``: that model written back as ``back.keras`` (`xlayers.save_keras`), in the same
  process as ``load`` (its peak reset through ``/proc/self/clear_refs``).

A last subprocess checks the round trip: ``back.keras``'s weights equal the ``.h5``'s bit for bit,
and the model's output equals Keras's under the tolerance policy.

Usage: python tools/port_scale.py [--dir FOLDER] [--shard-mb 100] [--repeats 3] [--keep] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
RSS_TARGET, SPEED_TARGET = 1.5, 2.0

BUILD = """
import sys, numpy as np, keras
keras.utils.set_random_seed(0)
model = keras.applications.VGG16(weights=None)
model.save(sys.argv[1] + "/vgg16.h5")
image = np.random.default_rng(1).standard_normal((1, 224, 224, 3)).astype("float32")
np.save(sys.argv[1] + "/image.npy", image)
np.save(sys.argv[1] + "/keras.npy", np.asarray(model(image)))
print(model.count_params())
"""

CHILD = """
import sys
for name in ("tensorflow", "keras", "tf_keras"):
    sys.modules[name] = None  # importing either fails, as if not installed
sys.path.insert(0, {root!r})
sys.argv = ["port_scale"] + {argv!r}
import runpy
runpy.run_path({script!r}, run_name="__child__")
"""


def _status(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def _measure(step, *args, **kwargs):
    """Run ``step(*args, **kwargs)``: its wall time and peak RSS growth (bytes), and its result."""
    try:  # reset the high-water mark to the current RSS (Linux >= 4.0)
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    os.sync()  # no step pays for the writeback of an earlier one
    before = _status("VmRSS")
    started = time.perf_counter()
    result = step(*args, **kwargs)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "rss_growth": _status("VmHWM") - before}, result


def _child(step: str, folder: Path, shard_bytes: int) -> None:
    """One step in this (TensorFlow-free) process; prints its figures as JSON."""
    import h5py
    import numpy as np
    import torch

    import xlayers
    from xlayers.layer import empty_weights
    from xlayers.port import port

    figures = {}
    if step == "port":
        figures["port"], _ = _measure(port, folder / "vgg16.h5", folder / "vgg16.safetensors",
                                      verify=False, max_shard_size=shard_bytes, print_fn=lambda *_: None)
    elif step == "load-save":
        with h5py.File(folder / "vgg16.h5", "r") as h5:
            config = json.loads(h5.attrs["model_config"])
        with empty_weights():  # every weight is then read from the shards
            model = xlayers.Model.from_config(config["config"])
        figures["load"], _ = _measure(model.load_weights, folder / "vgg16.safetensors.index.json")
        figures["save"], _ = _measure(xlayers.save_keras, model, folder / "back.keras")
    elif step == "check":
        from xlayers.tolerance import compare

        original, back = xlayers.from_keras(folder / "vgg16.h5"), xlayers.from_keras(folder / "back.keras")
        pairs = list(zip(original.walk_weights(), back.walk_weights()))
        figures["weights_equal"] = len(pairs) == len(list(original.walk_weights())) and all(
            a.path == b.path and torch.equal(a.parameter, b.parameter) for a, b in pairs)
        with torch.no_grad():
            ours = back(torch.from_numpy(np.load(folder / "image.npy"))).numpy()
        result = compare(ours, np.load(folder / "keras.npy"), "float32", "cpu")
        figures["output"] = {"passed": bool(result.passed), "max_abs_error": float(result.max_abs_error)}
        figures["bytes"] = sum(e.parameter.numel() * e.parameter.element_size() for e in back.walk_weights())
        figures["shards"] = len(set(json.loads((folder / "vgg16.safetensors.index.json").read_text())["weight_map"].values()))
    print(json.dumps(figures))


def _run_child(step: str, folder: Path, shard_bytes: int) -> dict:
    outputs = {"port": "vgg16*.safetensors*", "load-save": "back.keras"}
    for old in folder.glob(outputs.get(step, "-")):
        old.unlink()  # every step writes new files, as the copy does
    code = CHILD.format(root=str(ROOT), script=str(Path(__file__).resolve()), argv=["--child", step, "--dir", str(folder),
                                                                                    "--shard-mb", str(shard_bytes / 1e6)])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"step {step} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _copy_seconds(folder: Path) -> float:
    os.sync()
    started = time.perf_counter()
    shutil.copyfile(folder / "vgg16.h5", folder / "copy.h5")
    seconds = time.perf_counter() - started
    (folder / "copy.h5").unlink()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", help="the folder for the files (default: a new temporary folder, removed at the end)")
    parser.add_argument("--shard-mb", type=float, default=100.0, help="safetensors shard size in MB (default 100)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of copy and steps (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the files")
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    shard_bytes = int(args.shard_mb * 1e6)
    if args.child:
        _child(args.child, Path(args.dir), shard_bytes)
        return
    folder = Path(args.dir or tempfile.mkdtemp(prefix="port-scale-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        built = subprocess.run([sys.executable, "-c", BUILD, str(folder)], capture_output=True, text=True, check=False)
        if built.returncode != 0:
            raise SystemExit(f"building VGG16 in Keras failed:\n{built.stderr[-3000:]}")
        parameters = int(built.stdout.strip().splitlines()[-1])
        copies, rounds = [], []
        for _ in range(args.repeats):
            copies.append(_copy_seconds(folder))
            rounds.append({**_run_child("port", folder, shard_bytes), **_run_child("load-save", folder, shard_bytes)})
        check = _run_child("check", folder, shard_bytes)
    finally:
        if not args.keep and not args.dir:
            shutil.rmtree(folder, ignore_errors=True)
    size, copy = check["bytes"], min(copies)
    steps = {}
    for name in rounds[0]:
        seconds = [r[name]["seconds"] for r in rounds]
        growth = max(r[name]["rss_growth"] for r in rounds)
        steps[name] = {"seconds": seconds, "fastest": min(seconds), "median": statistics.median(seconds), "rss_growth": growth,
                       "rss_ratio": growth / size, "copy_ratio": min(seconds) / copy}
    passed = check["weights_equal"] and check["output"]["passed"] and all(
        f["rss_ratio"] <= RSS_TARGET and f["copy_ratio"] <= SPEED_TARGET for f in steps.values())
    report = {"model": "VGG16", "parameters": parameters, "weights_bytes": size, "shards": check["shards"],
              "copy_seconds": copies, "steps": steps, "weights_equal": check["weights_equal"], "output": check["output"],
              "targets": {"rss_growth_ratio": RSS_TARGET, "copy_ratio": SPEED_TARGET}, "passed": passed}
    print(f"VGG16: {parameters:,} parameters, {size / 1e6:.1f} MB of weights; {check['shards']} safetensors shards; "
          f"copy of the .h5: {' / '.join(f'{c:.2f}' for c in copies)} s (fastest {copy:.2f} s, median "
          f"{statistics.median(copies):.2f} s)")
    print(f"{'step':<6} {'fastest s':>9} {'median s':>9} {'x copy':>7} {'peak RSS growth MB':>19} {'x weights':>10}")
    for name, f in steps.items():
        print(f"{name:<6} {f['fastest']:>9.2f} {f['median']:>9.2f} {f['copy_ratio']:>7.2f} {f['rss_growth'] / 1e6:>19.1f} "
              f"{f['rss_ratio']:>10.2f}")
    print(f"round trip: weights bit-exact {check['weights_equal']}; output against Keras "
          f"{'within tolerance' if check['output']['passed'] else 'OUTSIDE tolerance'} "
          f"(max abs error {check['output']['max_abs_error']:.3g}); targets met: {passed}")
    print(json.dumps(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    sys.exit(0 if passed else 1)


if __name__ in ("__main__", "__child__"):
    main()
