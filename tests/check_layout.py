#!/usr/bin/env python3
"""The include graph of include/dsd/ against the floor order of docs/guide.md's "Layout" section.

Usage: check_layout.py GUIDE INCLUDE_DIR    checks the tree; exits 1 naming every back edge
       check_layout.py --self-test           checks that the checker finds what it must

The floors are the fenced `floors` block of the Layout section, lowest first, one per line:
`NAME: PATTERN...`, where a pattern is a header (`dsd.hpp`) or a folder (`detail/`), relative to
include/dsd/. A header belongs to its most specific pattern (a header before its folder, a deeper
folder before a shallower one). An include is dsd's when it names `dsd/...` (normalised, so
`dsd/detail/../mask.hpp` is mask.hpp) or is a quoted path relative to the including header
(`"../mask.hpp"`). A header may include headers of its own floor and of floors below
it; an include of a higher floor is a back edge. A header no pattern covers, or an include of a
dsd header that does not exist, is an error too, so a new folder cannot go unplaced.
"""

import pathlib
import posixpath
import re
import sys
import tempfile

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]', re.M)
HEADER_SUFFIXES = (".hpp", ".cuh", ".h", ".hh", ".inl", ".ipp", ".tpp")


def dsd_target(header, bracket, path):
    """The include's target relative to include/dsd/ (normalised), or None when it is not one of
    dsd's headers: `dsd/...` in either form, or a quoted path relative to the including header
    (`"../mask.hpp"`), which the compiler tries first."""
    if path.startswith("dsd/"):
        return posixpath.normpath(path[len("dsd/"):])
    if bracket == '"':
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(header), path))
        if not resolved.startswith("../"):
            return resolved
    return None


def read_floors(guide_text):
    """[(name, [patterns])] from the ```floors block after the '## Layout' heading."""
    section = re.search(r"^## Layout\b(.*?)(?=^## |\Z)", guide_text, re.M | re.S)
    if not section:
        raise SystemExit("check_layout: no '## Layout' section in the guide")
    block = re.search(r"^```floors\n(.*?)^```", section.group(1), re.M | re.S)
    if not block:
        raise SystemExit("check_layout: the Layout section has no ```floors block")
    floors = []
    for line in block.group(1).splitlines():
        if not line.strip():
            continue
        name, sep, patterns = line.partition(":")
        if not sep or not patterns.split():
            raise SystemExit(f"check_layout: malformed floors line {line!r}")
        floors.append((name.strip(), patterns.split()))
    return floors


def floor_of(header, floors):
    """(index, name) of the floor whose most specific pattern covers `header`, or None."""
    best = None  # (specificity, index, name)
    for index, (name, patterns) in enumerate(floors):
        for p in patterns:
            if p.endswith("/"):
                if header.startswith(p):
                    rank = (1, p.count("/"))
                else:
                    continue
            elif header == p:
                rank = (2, 0)
            else:
                continue
            if best is None or rank > best[0]:
                best = (rank, index, name)
    return None if best is None else best[1:]


def check(guide_text, root):
    floors = read_floors(guide_text)
    root = pathlib.Path(root)
    headers = sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                     if p.is_file() and p.suffix in HEADER_SUFFIXES)
    problems = []
    for h in headers:
        mine = floor_of(h, floors)
        if mine is None:
            problems.append(f"{h}: no floor of the Layout section covers it")
            continue
        for bracket, path in INCLUDE.findall((root / h).read_text(encoding="utf-8")):
            target = dsd_target(h, bracket, path)
            if target is None:
                continue  # the standard library, a backend's or a dependency's header
            if target.startswith("../") or not (root / target).is_file():
                problems.append(f"{h}: includes dsd/{target}, which does not exist")
                continue
            theirs = floor_of(target, floors)
            if theirs is None:
                continue  # reported as its own line above
            if theirs[0] > mine[0]:
                problems.append(f"{h} (floor {mine[1]}) includes dsd/{target} (floor {theirs[1]}), "
                                "a floor above it")
    return headers, problems


def self_test():
    guide = "# g\n## Layout\ntext\n```floors\nbase: detail/ error.hpp\ncore: mask.hpp\n" \
            "top: dsd.hpp\n```\n## Next\n"
    cases = {
        "clean": ({"detail/a.hpp": '#include "dsd/error.hpp"', "error.hpp": "",
                   "mask.hpp": '#include <dsd/detail/a.hpp>', "dsd.hpp": '#include "dsd/mask.hpp"'},
                  []),
        "back edge": ({"detail/a.hpp": '#include "dsd/mask.hpp"', "mask.hpp": "", "error.hpp": ""},
                      ["detail/a.hpp (floor base) includes dsd/mask.hpp (floor core)"]),
        "unplaced": ({"io/x.hpp": "", "mask.hpp": ""}, ["io/x.hpp: no floor"]),
        "missing": ({"mask.hpp": '#include "dsd/gone.hpp"'}, ["includes dsd/gone.hpp, which does not"]),
        "relative": ({"detail/a.hpp": '#include "../mask.hpp"', "mask.hpp": "", "error.hpp": ""},
                     ["detail/a.hpp (floor base) includes dsd/mask.hpp (floor core)"]),
        "dot-dot": ({"detail/a.hpp": '#include <dsd/detail/../mask.hpp>', "mask.hpp": ""},
                    ["detail/a.hpp (floor base) includes dsd/mask.hpp (floor core)"]),
        "inl": ({"detail/a.inl": '#include "dsd/mask.hpp"', "mask.hpp": ""},
                ["detail/a.inl (floor base) includes dsd/mask.hpp (floor core)"]),
        "sibling": ({"detail/a.hpp": '#include "b.hpp"', "detail/b.hpp": "", "mask.hpp": ""}, []),
    }
    failed = 0
    for name, (files, expected) in cases.items():
        with tempfile.TemporaryDirectory() as d:
            for rel, text in files.items():
                path = pathlib.Path(d, rel)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text + "\n", encoding="utf-8")
            _, problems = check(guide, d)
        ok = len(problems) == len(expected) and all(
            any(e in p for p in problems) for e in expected)
        if not ok:
            failed += 1
            print(f"self-test {name!r}: expected {expected}, got {problems}")
    if failed:
        return 1
    print(f"self-test: {len(cases)} cases passed")
    return 0


def main(argv):
    if argv[1:] == ["--self-test"]:
        return self_test()
    if len(argv) != 3:
        print(__doc__)
        return 2
    guide, root = argv[1:]
    headers, problems = check(pathlib.Path(guide).read_text(encoding="utf-8"), root)
    for p in problems:
        print(p)
    if problems:
        print(f"check_layout: {len(problems)} problem(s) in {len(headers)} headers")
        return 1
    print(f"check_layout: {len(headers)} headers, none includes a header of a higher floor")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
