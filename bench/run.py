"""`make bench`: run every bench/bench_*.py and print its figures.

Each benchmark module defines ``run() -> list[tuple[str, str]]`` (label,
formatted figure). Figures are measured, never asserted: targets are printed
beside them as ratios against the peer measured in the same run.
"""

import importlib
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))


def main(argv):
    only = argv[1:]
    failed = 0
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem
        if only and not any(o in name for o in only):
            continue
        print(f"\n== {name[6:]} ==", flush=True)
        t0 = time.perf_counter()
        try:
            rows = importlib.import_module(name).run()
        except Exception:  # a broken benchmark must not hide the others
            traceback.print_exc()
            failed += 1
            continue
        width = max((len(k) for k, _ in rows), default=0)
        for label, figure in rows:
            print(f"  {label:<{width}}  {figure}")
        print(f"  ({time.perf_counter() - t0:.1f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
