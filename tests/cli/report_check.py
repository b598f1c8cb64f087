#!/usr/bin/env python3
"""The HTML report of real runs, checked as a reader's tools see it.

usage: report_check.py TRAINER DSD_REPORT WORKDIR

Runs TRAINER (fashion_mlp) with --compare --epochs 1,1,1 on a slice of Fashion-MNIST for seeds 1
and 2, each writing --report and --report-data; then merges both seeds' records with DSD_REPORT.
Checks: the page parses as HTML with every element closed, every inline <svg> parses as XML, the
sections are there with what the runs did (two runs; 3 layers x 6 phase boundaries of histograms
each; fc1 pruned at exactly 117600 of 235200; the schedule's rates; the metadata's seed and
command), nothing is fetched (no script, no external URL), the merged report draws the two seeds
as mean ± sd, and bad records are refused by name. WORKDIR/seed1.html is left for the browser
test (report_browser.py)."""
import html.parser
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr", "source"}


class Checker(html.parser.HTMLParser):
    """Every element closed in order; the section ids; the text of the page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.sections, self.text, self.tags = [], [], [], []
        self.in_svg = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "section":
            self.sections.append(dict(attrs).get("id"))
        if tag not in VOID:
            self.stack.append((tag, self.getpos()))

    def handle_startendtag(self, tag, attrs):  # <rect .../> inside SVG
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1][0] != tag:
            raise AssertionError(f"</{tag}> at line {self.getpos()[0]} closes "
                                 f"{self.stack[-1] if self.stack else 'nothing'}")
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def check_page(path):
    with open(path, encoding="utf-8") as f:
        page = f.read()
    c = Checker()
    c.feed(page)
    c.close()
    assert not c.stack, f"{path}: unclosed elements {c.stack}"
    svgs = re.findall(r"<svg\b.*?</svg>", page, flags=re.S)
    for i, s in enumerate(svgs):
        try:
            ET.fromstring(s)
        except ET.ParseError as e:
            raise AssertionError(f"{path}: inline SVG {i} is not well-formed XML: {e}")
    assert not any(t == "script" for t, _ in c.tags), f"{path}: the report holds a script"
    for t, a in c.tags:
        for k, v in a.items():
            if k in ("src", "href") and v and re.match(r"[a-z]+:", v):
                raise AssertionError(f"{path}: <{t} {k}={v!r}> fetches from elsewhere")
    return page, c, svgs


def run(cmd, **kw):
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def main():
    trainer, merger, work = sys.argv[1:4]
    shutil.rmtree(work, ignore_errors=True)  # nothing left from an earlier run counts
    os.makedirs(work)
    for seed in (1, 2):
        r = run([trainer, "--compare", "--epochs", "1,1,1", "--train-limit", "3000", "--validation", "1000",
                 "--threads", "2", "--quiet", "--seed", str(seed), "--report", f"{work}/seed{seed}.html",
                 "--report-data", f"{work}/seed{seed}.json"])
        assert r.returncode == 0, r.stdout + r.stderr
        assert f"report written to {work}/seed{seed}.html" in r.stdout, r.stdout
        assert "img/s" not in r.stdout, "the live line is for terminals only"

    page, c, svgs = check_page(f"{work}/seed1.html")
    text = " ".join(c.text)
    assert c.sections == ["runs", "schedule", "curves", "histograms", "sparsity", "metadata"], c.sections
    # 3 curve charts + two runs x 3 layers x 6 boundaries (each phase's start and end)
    assert len(svgs) == 3 + 2 * 3 * 6, len(svgs)
    # each of the 3 layers at both ends of each phase: the dense baseline's three, DSD's D, S, R
    for label, n in (("1: D1 start", 6), ("1: D1 end", 6), ("2: D1 start", 3), ("3: D1 end", 3),
                     ("2: S1 start", 3), ("2: S1 end", 3), ("3: R1 start", 3), ("3: R1 end", 3)):
        assert text.count(label) == n, (label, text.count(label))
    # fc1 right after the prune: round(0.5 * 235200) positions pruned, and restored at re-dense
    assert "pruned 117600 (50.0%)" in text, "fc1's S1 histograms count the pruned positions apart"
    assert "fc1 235200 0.5000" in re.sub(r"\s+", " ", text), "the sparsity table's fc1 row"
    assert "prune: 0.5 of each layer" in text and "re-dense" in text, "the schedule's events"
    assert "the run's thresholds" not in text, "the schedule names the run's threshold policy"
    assert "--seed 1" in text and "fashion_mlp --compare" in text, "the metadata's command"
    assert re.search(r"\btest accuracy\b", text)
    for run_name in ("dense", "dsd"):
        assert f"<h3>{run_name}</h3>" in page, run_name

    r = run([merger, "--out", f"{work}/merged.html", "--title", "two seeds", f"{work}/seed1.json",
             f"{work}/seed2.json"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "report of 4 runs from 2 files" in r.stdout, r.stdout
    merged, mc, msvgs = check_page(f"{work}/merged.html")
    for run_name in ("dense", "dsd"):
        assert f"{run_name} (mean ± sd, 2 seeds)" in merged, run_name
    assert len(msvgs) == 3 + 2 * 3 * 6, len(msvgs)  # histograms of each configuration's first run

    r = run([merger, "--out", f"{work}/twice.html", f"{work}/seed1.json", f"{work}/seed1.json"])
    assert r.returncode != 0 and "is given twice" in r.stderr, r.stderr
    with open(f"{work}/bad.json", "w") as f:
        f.write('{"dsd_run_records": 1, "runs": [{"name": "x", "epochs": [{"phase": "sideways"}]}]}')
    r = run([merger, "--out", f"{work}/bad.html", f"{work}/bad.json"])
    assert r.returncode != 0 and "bad.json" in r.stderr, r.stderr
    assert not os.path.exists(f"{work}/bad.html"), "nothing written for bad records"
    print("report checks passed:", len(svgs), "inline SVGs,", len(page), "bytes")


if __name__ == "__main__":
    main()
