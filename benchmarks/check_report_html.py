"""Render a report and open report.html in headless Chromium: do its pictures load?

1. Renders ``DIR`` (or a synthetic `reproduce` folder built like the tests' fixture).
2. Checks the HTML references no external resource (no http(s)/file URL in src/href).
3. ``--dump-dom`` of a copy with a probe script: counts <img> with data URIs and how many decoded
   (``naturalWidth > 0``).
4. Takes a screenshot and checks it is not blank (share of non-white pixels, distinct colours).

Needs the Debian package ``chromium``. Exits 1 when a check fails.

Usage: .venv/bin/python benchmarks/check_report_html.py [--dir DIR] [--screenshot PNG]
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from mirror_align.report.render import render_report

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--virtual-time-budget=10000",
]
PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  document.body.setAttribute('data-images', imgs.length);
  document.body.setAttribute('data-decoded', imgs.filter(i => i.complete && i.naturalWidth > 0).length);
});
</script>"""


def chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        sys.exit("chromium not found: apt-get update && apt-get install -y chromium")
    return subprocess.run(
        [binary, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=180,
    )


def synthetic_dir(root: Path) -> Path:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from report_fixtures import write_fake_reproduce

    return write_fake_reproduce(root)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None, help="a `reproduce` folder (default: synthetic)")
    parser.add_argument("--screenshot", default=None, help="where to save the screenshot PNG")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=6000)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="check_report_"))
    root = Path(args.dir) if args.dir else synthetic_dir(work / "reproduce")
    paths = render_report(root)
    page = paths.html.read_text(encoding="utf-8")
    failures = []

    external = re.findall(r"""(?:src|href)\s*=\s*["']?(?:https?:|file:|//)""", page)
    data_imgs = len(re.findall(r'<img[^>]+src="data:image/png;base64,', page))
    print(
        f"html: {paths.html} ({len(page) / 1e6:.2f} MB), <img> with data URIs: {data_imgs}, "
        f"external references: {len(external)}"
    )
    if external:
        failures.append(f"{len(external)} external reference(s)")

    probed = work / "probed.html"
    probed.write_text(page.replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = chromium(["--dump-dom", probed.as_uri()], work / "profile_dom")
    images = re.search(r'data-images="(\d+)"', dom.stdout)
    decoded = re.search(r'data-decoded="(\d+)"', dom.stdout)
    dom_imgs = len(re.findall(r'<img[^>]+src="data:image/png;base64,', dom.stdout))
    n_images = int(images.group(1)) if images else -1
    n_decoded = int(decoded.group(1)) if decoded else -1
    print(
        f"dump-dom: <img> with data URIs in the DOM: {dom_imgs}, images: {n_images}, "
        f"decoded (naturalWidth > 0): {n_decoded}"
    )
    if dom_imgs != data_imgs or n_decoded != data_imgs or data_imgs == 0:
        failures.append(f"images: {data_imgs} in html, {dom_imgs} in DOM, {n_decoded} decoded")
        print(dom.stderr[-2000:], file=sys.stderr)

    shot = Path(args.screenshot) if args.screenshot else work / "report_screenshot.png"
    shot.parent.mkdir(parents=True, exist_ok=True)
    chromium(
        [f"--screenshot={shot}", f"--window-size={args.width},{args.height}", paths.html.as_uri()],
        work / "profile_shot",
    )
    if not shot.is_file():
        failures.append("no screenshot written")
    else:
        pixels = np.asarray(Image.open(shot).convert("RGB"))
        non_white = float((pixels < 245).any(axis=2).mean())
        colours = len(np.unique(pixels.reshape(-1, 3)[::7], axis=0))
        print(
            f"screenshot: {shot} {pixels.shape[1]}x{pixels.shape[0]}, non-white pixels "
            f"{non_white:.1%}, distinct colours (sampled) {colours}"
        )
        if non_white < 0.02 or colours < 50:
            failures.append("screenshot looks blank")
    print("OK" if not failures else "FAILED: " + "; ".join(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
