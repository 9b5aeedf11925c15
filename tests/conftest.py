"""Shared fixtures: real servers on 127.0.0.1 (uvicorn in a background thread) and the shared corpus."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapters.devauth.server import ServerThread, free_port

__all__ = ["ServerThread", "free_port"]  # the suite's helpers for serving apps on 127.0.0.1

ROOT = Path(__file__).resolve().parent.parent
SHARED_SPECS = ROOT.parent / "shared" / "specs"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@contextlib.contextmanager
def serve(app: Any) -> Iterator[ServerThread]:
    with ServerThread(app) as server:
        yield server


@pytest.fixture(scope="session")
def petstore_backend() -> Iterator[ServerThread]:
    from adapters.petstore.backend import create_app

    with serve(create_app()) as server:
        yield server


@pytest.fixture(scope="session")
def shared_specs() -> Path:
    if not (SHARED_SPECS / "MANIFEST.tsv").exists():
        pytest.skip("the shared spec corpus (../shared/specs) is not available")
    return SHARED_SPECS


def write_text(folder: Path, text: str, name: str) -> Path:
    """`text` (dedented, leading newline dropped) written to `folder/name`."""
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def line(path: Path, needle: str, occurrence: int = 1) -> str:
    """`file:line` of the `occurrence`-th line of `path` containing `needle` (what errors must point at)."""
    found = [n for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in text]
    return f"{path}:{found[occurrence - 1]}"


def manifest(specs: Path) -> list[dict[str, str]]:
    lines = (specs / "MANIFEST.tsv").read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=False)) for line in lines[1:] if line.strip()]


TOOLS_HOME = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "semantic-adapter-gateway"
"""Where the test suite installs the npm tools it drives (Prism, MCP Inspector), outside the checkout."""


class NpmUnavailable(Exception):
    """npm is not on PATH: tests needing an npm tool skip."""


def npm_tool(home: Path, packages: list[str], package: str, version: str, command: str) -> Path:
    """`command` from `package@version` installed under `home` with npm (once; later runs reuse it).

    Raises NpmUnavailable without npm, and RuntimeError (with npm's output) when installing fails, so a
    broken install fails the tests that need it instead of skipping them.
    """
    exe = home / "node_modules" / ".bin" / command
    manifest = home / "node_modules" / package / "package.json"
    if exe.exists() and manifest.exists() and json.loads(manifest.read_text()).get("version") == version:
        return exe
    npm = shutil.which("npm")
    if npm is None:
        raise NpmUnavailable(f"npm is not on PATH, so {package} cannot be installed")
    home.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([npm, "install", "--prefix", str(home), "--no-audit", "--no-fund", *packages],
                          capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0 or not exe.exists():
        raise RuntimeError(f"`npm install {' '.join(packages)}` into {home} failed (exit {done.returncode}):\n"
                           f"{(done.stdout + done.stderr)[-3000:]}")
    return exe


def debian_tool(path: str, package: str) -> str | None:
    """`path` of a Debian package's program, installing the package on CI (a fresh, root Debian machine).

    Elsewhere a missing program is None and the tests needing it skip; on CI a failed install fails them.
    """
    if Path(path).exists() or shutil.which(path):
        return shutil.which(path) or path
    if not os.environ.get("CI") or not shutil.which("apt-get") or os.geteuid() != 0:
        return None
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", package]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False,
                              env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        if done.returncode != 0:
            pytest.fail(f"could not install {package}: {done.stderr[-500:]}")
    return shutil.which(path) or (path if Path(path).exists() else None)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's headless Chromium driven by Playwright (never a downloaded browser).

    Module-scoped: Playwright's sync API holds an event loop in this thread while it runs, which the
    async tests of other modules must not meet."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (dev extra)")
    from tests.widget_host import CHROMIUM, CHROMIUM_ARGS

    if debian_tool(str(CHROMIUM), "chromium") is None:
        pytest.skip(f"{CHROMIUM} is missing (Debian: apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()
