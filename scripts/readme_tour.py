"""Regenerate the README tour from the commands it shows.

Every fenced ``text`` block of README.md whose first line is ``$ hierro ...`` (with ``\\``
continuation lines) is rerun in a 100-column terminal and its output replaces the block's body;
a block preceded by ``<!-- tour: ARGS | columns=N | head=K -->`` runs ``hierro ARGS`` without
echoing the command and keeps the first K lines; the table between ``<!-- accuracy:start -->``
and ``<!-- accuracy:end -->`` is copied from ACCURACY.md's first table (the simulated predictor).

    python scripts/readme_tour.py          # rewrite README.md in place
    python scripts/readme_tour.py --check  # exit 1 if README.md is out of date
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARK = re.compile(r"<!-- tour: (?P<args>.*?)(?: \| columns=(?P<cols>\d+))?(?: \| head=(?P<head>\d+))? -->")


def run(args: list[str], columns: int) -> str:
    env = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1", "TERM": "dumb"}
    out = subprocess.run([sys.executable, "-m", "hierro", *args], capture_output=True, text=True, env=env,
                         cwd=ROOT, check=True)
    return "\n".join(line.rstrip() for line in out.stdout.rstrip("\n").splitlines())


def accuracy_table() -> str:
    text = (ROOT / "ACCURACY.md").read_text(encoding="utf-8")
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| metric |"))
    end = next(i for i in range(start, len(lines)) if not lines[i].startswith("|"))
    return "\n".join(lines[start:end])


def render(readme: str) -> str:
    lines = readme.splitlines()
    out: list[str] = []
    i = 0
    marker: re.Match[str] | None = None
    while i < len(lines):
        line = lines[i]
        if line == "<!-- accuracy:start -->":
            out += [line, accuracy_table()]
            i = next(j for j in range(i, len(lines)) if lines[j] == "<!-- accuracy:end -->")
            continue
        m = MARK.fullmatch(line)
        if m:
            marker = m
            out.append(line)
            i += 1
            continue
        if line == "```text" and i + 1 < len(lines):
            end = next(j for j in range(i + 1, len(lines)) if lines[j] == "```")
            body = lines[i + 1:end]
            if marker is not None:
                text = run(shlex.split(marker["args"]), int(marker["cols"] or 100))
                head = int(marker["head"]) if marker["head"] else None
                text = "\n".join(text.splitlines()[:head])
                out += [line, text, "```"]
                marker = None
                i = end + 1
                continue
            if body and body[0].startswith("$ hierro "):
                cmd = [body[0]]
                k = 0
                while cmd[-1].endswith("\\"):
                    k += 1
                    cmd.append(body[k])
                words = shlex.split(" ".join(c.rstrip("\\") for c in cmd))[2:]
                out += [line, *cmd, run(words, 100), "```"]
                i = end + 1
                continue
        marker = None if line.strip() else marker
        out.append(line)
        i += 1
    return "\n".join(out) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    path = ROOT / "README.md"
    old = path.read_text(encoding="utf-8")
    new = render(old)
    if a.check:
        return 0 if new == old else 1
    path.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
