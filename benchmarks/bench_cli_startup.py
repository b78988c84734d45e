"""Cold start of `mcv --help` and `mcv providers` against `python -c "import boto3"` (the peer).

Target (DESIGN boundary 1): both under 0.3 s and faster than importing boto3 alone.
Each command runs as a fresh process, several times; we report min and median wall time
and the ratio to the peer. Run: python benchmarks/bench_cli_startup.py [--runs N]
Needs boto3 installed in the same environment (pip install boto3) for the peer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = {
    "mcv --help": [sys.executable, "-m", "multicloud_cv.cli.main", "--help"],
    "mcv providers": [sys.executable, "-m", "multicloud_cv.cli.main", "providers"],
    "mcv providers --json": [sys.executable, "-m", "multicloud_cv.cli.main", "providers", "--json"],
    "peer: import boto3": [sys.executable, "-c", "import boto3"],
}


def time_command(argv: list[str], runs: int) -> list[float]:
    """Wall seconds of ``runs`` fresh runs (after one warm-up run for the file cache)."""
    subprocess.run(argv, capture_output=True, check=True)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--out", type=Path, default=Path(".bench/cli_startup.json"))
    args = parser.parse_args()
    results = {name: time_command(argv, args.runs) for name, argv in COMMANDS.items()}
    peer = statistics.median(results["peer: import boto3"])
    rows = []
    print("| command | min s | median s | median / import boto3 | under 0.3 s |")
    print("|---|---|---|---|---|")
    for name, times in results.items():
        med = statistics.median(times)
        rows.append({"command": name, "min_s": min(times), "median_s": med, "ratio_to_boto3": med / peer})
        print(f"| {name} | {min(times):.3f} | {med:.3f} | {med / peer:.2f} | {'yes' if med < 0.3 else 'NO'} |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"runs": args.runs, "results": rows}, indent=2))


if __name__ == "__main__":
    main()
