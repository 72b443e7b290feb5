"""This checkout against an earlier commit, interleaved in one run (issue 31, docs/performance.md).

Each measurement is one worker process of ``bench_model.py`` (the forward pass at the paper's
configuration, c = 64, 192², B = 1) or ``bench_predict.py`` (whole volumes), run from the
checkout's own tree or from the baseline commit's, extracted with ``git archive`` and imported
through ``PYTHONPATH``. Rounds interleave the two versions job by job, so a change in the
machine's load touches both alike; the report gives each job's median per version and the
ratio baseline / this checkout (above 1: this checkout is faster).

    python benchmarks/bench_versions.py --baseline a2f18c1 \\
        --output benchmarks/results/bench_versions.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# (name, script, worker arguments): the jobs issue 31's acceptance names.
JOBS = {
    "model-plain-L8": ("bench_model.py", ["--worker", "plain", "--n-context", "8"]),
    "model-fast-L8": ("bench_model.py", ["--worker", "fast", "--n-context", "8"]),
    "model-plain-L32": ("bench_model.py", ["--worker", "plain", "--n-context", "32"]),
    "model-fast-L32": ("bench_model.py", ["--worker", "fast", "--n-context", "32"]),
    "predict-e1": ("bench_predict.py", ["--worker", "predict-e1"]),
    "predict-all-e1": ("bench_predict.py", ["--worker", "predict-all-e1"]),
    "predict-e8": ("bench_predict.py", ["--worker", "predict-e8"]),
    # a2f18c1's bench_predict.py has no such job: this checkout's script times both trees' code
    # (public predict_volume only), alignment included: 8 example-to-target registrations there,
    # 9 registrations to MNI152 here.
    "predict-affine-e1": ("bench_predict.py", ["--worker", "predict-affine-e1"]),
}
#: Jobs whose script always comes from this checkout, whichever tree's code it times.
SCRIPT_FROM_HEAD = {"predict-affine-e1"}


def _tree(commit: str, into: Path) -> Path:
    """The files of ``commit`` under ``into`` (``git archive``: no worktree left behind)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def _busy(seconds: float = 3.0) -> float:
    """Fraction of the machine's CPU time spent busy over ``seconds`` (from /proc/stat)."""

    def sample() -> tuple[int, int]:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields) - idle, sum(fields)

    busy0, total0 = sample()
    time.sleep(seconds)
    busy1, total1 = sample()
    return (busy1 - busy0) / max(1, total1 - total0)


def _wait_quiet(max_wait: float, threshold: float = 0.1) -> float:
    """Wait (at most ``max_wait`` s) until the machine is idle to within ``threshold``; returns
    the last busy fraction seen, which the report keeps beside each measurement."""
    deadline = time.monotonic() + max_wait
    busy = _busy()
    while busy > threshold and time.monotonic() < deadline:
        time.sleep(2.0)
        busy = _busy()
    return busy


def _measure(tree: Path, job: str, threads: int, runs: int) -> dict:
    script, arguments = JOBS[job]
    script_tree = ROOT if job in SCRIPT_FROM_HEAD else tree
    command = [sys.executable, str(script_tree / "benchmarks" / script), *arguments]
    command += ["--threads", str(threads)]
    if script == "bench_model.py":
        command += ["--runs", str(runs)]
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    result = json.loads(out.strip().splitlines()[-1])
    seconds = result.get("median_s", result.get("seconds"))
    return {"seconds": seconds, "peak_rss_mb": result.get("peak_rss_mb"), "raw": result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="commit to compare against")
    parser.add_argument("--jobs", nargs="+", choices=list(JOBS), default=list(JOBS))
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3, help="forward passes per model worker")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        metavar="S",
        help="wait up to S s for an idle machine before each measurement",
    )
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    measured: dict[str, dict[str, list[dict]]] = {
        job: {"baseline": [], "head": []} for job in args.jobs
    }
    with tempfile.TemporaryDirectory() as scratch:
        trees = {"baseline": _tree(args.baseline, Path(scratch)), "head": ROOT}
        for round_ in range(args.rounds):
            for job in args.jobs:
                for version, tree in trees.items():
                    busy = _wait_quiet(args.quiet_wait) if args.quiet_wait else None
                    result = _measure(tree, job, args.threads, args.runs)
                    result["busy_before"] = busy
                    measured[job][version].append(result)
                    shown = "not checked" if busy is None else f"{100 * busy:.0f}%"
                    print(f"round {round_ + 1} {job} {version}: {result['seconds']:.3f} s, "
                          f"peak {result['peak_rss_mb']:.0f} MB, busy before: {shown}",
                          flush=True)  # fmt: skip
    summary = {}
    for job, versions in measured.items():
        median = {v: statistics.median(r["seconds"] for r in rows) for v, rows in versions.items()}
        peak = {v: max(r["peak_rss_mb"] for r in rows) for v, rows in versions.items()}
        summary[job] = {
            "baseline_s": median["baseline"],
            "head_s": median["head"],
            "speedup": median["baseline"] / median["head"],
            "baseline_peak_mb": peak["baseline"],
            "head_peak_mb": peak["head"],
        }
    print(f"| job | {args.baseline} s | {head} s | speed-up | peak MB {args.baseline} | "
          f"peak MB {head} |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for job, s in summary.items():
        print(f"| {job} | {s['baseline_s']:.2f} | {s['head_s']:.2f} | {s['speedup']:.2f}x | "
              f"{s['baseline_peak_mb']:.0f} | {s['head_peak_mb']:.0f} |")  # fmt: skip
    if args.output:
        report = {"machine": platform.platform(), "baseline": args.baseline, "head": head,
                  "threads": args.threads, "summary": summary, "measured": measured}  # fmt: skip
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
