#!/usr/bin/env python3
"""Renders an HTML report in a real browser, headless Chromium (Debian's `chromium`), to a PNG, and
checks that the page rendered: Chromium exits 0, its console is free of messages (the report has
no scripts, so any message is an error: a resource it failed to load, a parse error), and the PNG
decodes (zlib, every row filter of the PNG format) to an image of the asked size that is not
blank: at least 3 % of its pixels not white, at least 16 colours (text, axes, histogram bars,
the shaded phases).

usage: report_browser.py REPORT.html OUT.png [WIDTH HEIGHT]

Exits 77 (ctest: skipped), saying why, when Chromium is not installed. The README's screenshot
(docs/report.png) is made by this script, through scripts/report_screenshot.sh."""
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib


def find_chromium():
    for name in (os.environ.get("DSD_CHROMIUM"), "chromium", "chromium-browser"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


def decode_png(data):
    """(width, height, rows of bytes, bytes per pixel) of an 8-bit RGB or RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    pos, idat, header = 8, [], None
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + length
    width, height, depth, colour, _, _, interlace = header
    assert depth == 8 and colour in (2, 6) and interlace == 0, f"unexpected PNG format {header}"
    bpp = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    assert len(raw) == height * (stride + 1), "truncated image data"
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif f == 2:
            line = bytearray((a + b) & 0xFF for a, b in zip(line, prev))
        elif f == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif f == 4:
            for i in range(stride):
                a = line[i - bpp] if i >= bpp else 0
                b = prev[i]
                c = prev[i - bpp] if i >= bpp else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        else:
            assert f == 0, f"unknown PNG row filter {f}"
        rows.append(bytes(line))
        prev = line
    return width, height, rows, bpp


def main():
    if len(sys.argv) not in (3, 5):
        sys.exit(__doc__)
    report, png = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    width, height = (int(sys.argv[3]), int(sys.argv[4])) if len(sys.argv) == 5 else (1400, 2600)
    chromium = find_chromium()
    if not chromium:
        print("skipped: Chromium is not installed (apt-get install chromium; scripts/test.sh installs it)")
        sys.exit(77)
    assert os.path.isfile(report), f"no report at {report}"
    if os.path.exists(png):
        os.remove(png)
    with tempfile.TemporaryDirectory(prefix="dsd-chromium-") as profile:
        # --no-sandbox: Chromium's sandbox refuses to run as root (CI, the README's commands).
        cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--no-first-run", f"--user-data-dir={profile}", f"--window-size={width},{height}",
               "--enable-logging=stderr", "--v=0", f"--screenshot={png}", "file://" + report]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    log = r.stdout + r.stderr
    assert r.returncode == 0, f"chromium exited {r.returncode}:\n{log}"
    console = [line for line in log.splitlines() if ":CONSOLE" in line]
    assert not console, "the page wrote to the console:\n" + "\n".join(console)
    assert os.path.isfile(png), f"chromium wrote no screenshot:\n{log}"
    with open(png, "rb") as f:
        w, h, rows, bpp = decode_png(f.read())
    assert (w, h) == (width, height), f"screenshot is {w}x{h}, asked {width}x{height}"
    white, colours = 0, set()
    for row in rows[::4]:  # every 4th row and column: enough to tell a page from a blank
        for x in range(0, w * bpp, 4 * bpp):
            px = row[x:x + 3]
            white += px == b"\xff\xff\xff"
            if len(colours) < 4096:
                colours.add(px)
    sampled = len(rows[::4]) * len(range(0, w * bpp, 4 * bpp))
    inked = 1.0 - white / sampled
    assert inked >= 0.03, f"the page looks blank: {inked:.1%} of the pixels are not white"
    assert len(colours) >= 16, f"the page looks blank: {len(colours)} colours"
    print(f"rendered {report} in {os.path.basename(chromium)}: {w}x{h} PNG, {inked:.1%} of pixels inked, "
          f"{len(colours)}{'+' if len(colours) >= 4096 else ''} colours, console empty")


if __name__ == "__main__":
    main()
