#!/usr/bin/env python3
"""Side-by-side wall time of two snippet-guard binaries linting one file.

    bench/ab.py OLD_BINARY NEW_BINARY FILE RUNS

Runs `lint --format json --exit-zero FILE` with each binary RUNS times, alternating which goes
first in each round, and prints the medians, the ratio new/old and the number of findings of
each (they must agree). Used for the before/after table in docs/performance.md.
"""
import json
import statistics
import subprocess
import sys
import time


def main() -> int:
    if len(sys.argv) != 5:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    old, new, path, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    times: dict[str, list[float]] = {"old": [], "new": []}
    findings: dict[str, int] = {}
    for i in range(runs):
        order = [("old", old), ("new", new)] if i % 2 == 0 else [("new", new), ("old", old)]
        for name, binary in order:
            start = time.perf_counter()
            run = subprocess.run(
                [binary, "lint", "--format", "json", "--exit-zero", path],
                capture_output=True,
                check=False,
            )
            times[name].append(time.perf_counter() - start)
            findings[name] = len(json.loads(run.stdout)["diagnostics"])
    for name, values in times.items():
        print(
            f"{name}: median {statistics.median(values) * 1000:.1f} ms, "
            f"min {min(values) * 1000:.1f} ms ({len(values)} runs), {findings[name]} findings"
        )
    print(f"ratio new/old: {statistics.median(times['new']) / statistics.median(times['old']):.2f}")
    return 0 if findings["old"] == findings["new"] else 1


if __name__ == "__main__":
    sys.exit(main())
