"""Time to get ImageNet variables: converting the official file vs reading the converted file.

    python benchmarks/weights_load.py [--dir DIR] [--reps 3]

For every official weight file found offline (DIR first, then the places
`fluxseg.weights.load` searches), converts it (`prefer_converted=False`),
writes the converted file into a temporary directory as `fluxseg weights
convert` does, then reads that back; prints a markdown table of median
seconds. Reading never compiles anything, so this is pure I/O and parsing.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from fluxseg.weights import hub, registry


def _median_seconds(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", help="directory with official weight files, searched first")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for (source, model), files in registry.FILES.items():
            for wf in files:
                path = next((d / wf.filename for d in ([Path(args.dir)] if args.dir else []) + [d for d, _ in hub.search_dirs()]
                             if (d / wf.filename).is_file()), None)
                if path is None:
                    continue
                top = wf.include_top
                convert = lambda: hub.load(model, source, path=path, include_top=top, prefer_converted=False)  # noqa: E731
                t_convert = _median_seconds(convert, args.reps)
                converted = hub.save_converted(convert(), tmp)
                t_read = _median_seconds(lambda: hub.load(model, source, path=converted, include_top=top), args.reps)
                rows.append((wf.filename, model, source, path.stat().st_size / 2**20, t_convert, t_read))
    if not rows:
        print("no official weight files found; see `fluxseg weights list`")
        return 1
    print("| file | model | source | MiB | convert s | read converted s |\n|---|---|---|---:|---:|---:|")
    for name, model, source, mib, tc, tr in rows:
        print(f"| {name} | {model} | {source} | {mib:.0f} | {tc:.2f} | {tr:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
