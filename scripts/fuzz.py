"""Fuzz gemma-mlx's input surfaces for a while: `scripts/fuzz.py --minutes 10 [SURFACE ...]`.

Each surface (tests/fuzzing.py) runs in rounds of hypothesis examples, with a new seed each
round, until its time is up. A failure (anything but success or a GemmaError: a traceback, a
hang, a giant allocation) is shrunk by hypothesis, saved under --out with its traceback, and
the run goes on. Prints one row per surface: cases, distinct failures.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis import seed as hypothesis_seed  # noqa: E402

import gemma_mlx  # noqa: E402,F401  (binds OpenBLAS first)
from tests.fuzzing import SURFACES, close, run_case  # noqa: E402


def _signature(exc: BaseException) -> str:
    """Distinct failures: the exception type and the innermost frame in gemma_mlx (or last)."""
    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if "gemma_mlx" in f.filename] or frames[-1:]
    where = f"{Path(ours[-1].filename).name}:{ours[-1].lineno}" if ours else "?"
    return f"{type(exc).__name__} at {where}"


def fuzz(name: str, minutes: float, out: Path, round_size: int, start_seed: int) -> dict:
    surface = SURFACES[name]
    counts: Counter = Counter()
    failures: dict[str, str] = {}
    deadline = time.monotonic() + minutes * 60
    with tempfile.TemporaryDirectory() as scratch:
        strategy = surface.strategy()

        def case(data) -> None:
            counts[run_case(surface, data, Path(scratch))] += 1

        round_no = start_seed
        while time.monotonic() < deadline:
            test = settings(max_examples=round_size, deadline=None, database=None,
                            phases=[Phase.generate, Phase.shrink], print_blob=False,
                            suppress_health_check=list(HealthCheck))(given(strategy)(case))
            try:
                hypothesis_seed(round_no)(test)()
            except Exception as e:  # the round's failures, shrunk (a group when several)
                counts["failed"] += 1
                for one in getattr(e, "exceptions", [e]):
                    sig = _signature(one)
                    if sig in failures:
                        continue
                    failures[sig] = "".join(traceback.format_exception(one))
                    out.mkdir(parents=True, exist_ok=True)
                    digest = hashlib.sha1(f"{name} {sig}".encode()).hexdigest()[:10]
                    (out / f"{name}-{digest}.txt").write_text(failures[sig])
                    print(f"  {name}: {sig}", flush=True)
            round_no += 1
    return {"cases": sum(counts.values()), "ok": counts["ok"], "refused": counts["refused"],
            "failures": failures}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("surfaces", nargs="*", help=f"default: all of {', '.join(SURFACES)}")
    ap.add_argument("--minutes", type=float, default=10.0, help="per surface")
    ap.add_argument("--round", type=int, default=200, help="examples per hypothesis round")
    ap.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(4), "little"))
    ap.add_argument("--out", type=Path, default=ROOT / "fuzz-failures")
    args = ap.parse_args()
    names = args.surfaces or list(SURFACES)
    unknown = sorted(set(names) - set(SURFACES))
    if unknown:
        ap.error(f"unknown surface(s) {unknown}; choose from {list(SURFACES)}")
    print(f"seed {args.seed}, {args.minutes:g} min per surface", flush=True)
    rows = []
    for name in names:
        t0 = time.monotonic()
        r = fuzz(name, args.minutes, args.out, args.round, args.seed)
        rows.append((name, r, time.monotonic() - t0))
        close()
        print(f"{name}: {r['cases']} cases ({r['ok']} loaded, {r['refused']} refused), "
              f"{len(r['failures'])} distinct failures", flush=True)
    print("\n| surface | minutes | cases | accepted | refused | distinct failures |")
    print("|---|---|---|---|---|---|")
    for name, r, secs in rows:
        print(f"| {name} | {secs / 60:.1f} | {r['cases']} | {r['ok']} | {r['refused']} | "
              f"{len(r['failures'])} |")
    for name, r, _ in rows:
        for sig in r["failures"]:
            print(f"FAIL {name}: {sig}")
    return 1 if any(r["failures"] for _, r, _ in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
