"""Mutation testing of the modules where a silent bug costs most, and its score per module.

    uv run python tests/_mutation/run.py            # mutmut run, then the score
    uv run python tests/_mutation/run.py --score    # the score of the last run only

The modules and the tests that judge them are ``[tool.mutmut]`` in pyproject.toml; the run
works in ``mutants/`` (ignored by git) and picks up where it stopped. The score counts a
mutant killed when a test failed or it timed out; every other mutant is listed so that it can
be killed by a new test or explained in the README ("Test strength").
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KILLED = {"killed", "timeout", "segfault"}


def status_of(code: int | None) -> str:
    """mutmut's name for a mutant's exit code (its own table, so the two never disagree)."""
    from mutmut.stats import status_by_exit_code

    return status_by_exit_code[code]


def score(root: Path = REPO / "mutants") -> int:
    """Print killed/total per module and the mutants not killed; how many were not killed."""
    metas = sorted(root.glob("gust/**/*.py.meta"))
    if not metas:
        print(f"no mutation results under {root}: run without --score first", file=sys.stderr)
        return 1
    missed: list[tuple[str, str]] = []
    total = Counter[str]()
    print(f"{'module':<28} {'killed':>7} {'total':>6} {'score':>6}")
    for meta in metas:
        module = str(meta.relative_to(root))[: -len(".meta")]
        codes = json.loads(meta.read_text(encoding="utf-8"))["exit_code_by_key"]
        statuses = {key: status_of(code) for key, code in codes.items()}
        killed = sum(s in KILLED for s in statuses.values())
        print(f"{module:<28} {killed:>7} {len(codes):>6} {killed / max(1, len(codes)):>6.0%}")
        total.update(killed=killed, total=len(codes))
        missed += sorted((k, s) for k, s in statuses.items() if s not in KILLED)
    print(f"{'all':<28} {total['killed']:>7} {total['total']:>6} "
          f"{total['killed'] / max(1, total['total']):>6.0%}")  # fmt: skip
    for key, status in missed:
        print(f"  {status:<12} {key}")
    return 0 if not missed else 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--score", action="store_true", help="only print the last run's score")
    parser.add_argument("mutants", nargs="*", help="mutant names or globs for mutmut run")
    args = parser.parse_args(argv)
    if not args.score:
        run = subprocess.run(["mutmut", "run", *args.mutants], cwd=REPO, check=False)
        if run.returncode not in (0, 1):
            return run.returncode
    return score()


if __name__ == "__main__":
    sys.exit(main())
