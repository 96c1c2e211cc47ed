"""Open a page in headless Chromium: did it render, did every image load, did the console stay quiet?"""
import re
import shutil
import subprocess
from pathlib import Path

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--virtual-time-budget=10000",
         "--enable-logging=stderr", "--v=0", "--dump-dom"]


def chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("chromium is not installed here (CI installs Debian's chromium); the browser check is skipped")
    return exe


def open_page(page: Path, profile: Path) -> dict:
    """{"status": data-status of #render-status, "text": its text, "console": console lines, "dom": the DOM}."""
    proc = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", page.resolve().as_uri()],
                          capture_output=True, text=True, timeout=120)
    dom = proc.stdout
    m = re.search(r'id="render-status" data-status="(\w+)">([^<]*)<', dom)
    return {"status": m.group(1) if m else None, "text": m.group(2) if m else None,
            "console": [line for line in proc.stderr.splitlines() if ":CONSOLE" in line], "dom": dom,
            "returncode": proc.returncode}


def external_references(html: str) -> list[str]:
    """Every src/href that is not inline data or an in-page anchor (a self-contained page has none)."""
    refs = re.findall(r"""(?:src|href)\s*=\s*["']([^"']*)["']""", html)
    return [r for r in refs if not (r.startswith("data:") or r.startswith("#"))]
