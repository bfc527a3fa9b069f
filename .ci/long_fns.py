#!/usr/bin/env python3
"""Lists functions longer than a limit (default 100 lines) under the given source folders.

Usage: .ci/long_fns.py [--limit N] src/core src/app
A function is counted from its `fn` line to the closing brace at the same indentation.
"""
import re
import sys
from pathlib import Path

args = sys.argv[1:]
limit = 100
if args[:1] == ["--limit"]:
    limit, args = int(args[1]), args[2:]
fn = re.compile(r"^(\s*)(pub(\([a-z]+\))? )?(async )?(const )?fn (\w+)")
for root in args or ["src/core", "src/app"]:
    for path in sorted(Path(root).rglob("*.rs")):
        lines = path.read_text().split("\n")
        for i, line in enumerate(lines):
            m = fn.match(line)
            if not m or line.rstrip().endswith(";"):
                continue
            indent = m.group(1)
            for j in range(i + 1, len(lines)):
                if lines[j] == indent + "}":
                    if j - i + 1 > limit:
                        print(f"{j - i + 1:5} {path}:{i + 1} {m.group(6)}")
                    break
