"""The Dockerfile, built and run for real: Debian's podman/buildah on a base image made with debootstrap.

No image registry is reachable, so the base is a minimal Debian bookworm with Debian's python3 (made once
with debootstrap and cached as localhost/gateway-base:bookworm). The project's Dockerfile is built on it
with `podman build`, and the image is run with `buildah run --isolation chroot` (the image's own files,
user and environment, with the host's network): every top-level directory of the image is bind-mounted
read-only over itself and /tmp is a tmpfs, which is what a read-only root filesystem looks like to the
gateway (`buildah run` has no `--read-only`). The test then talks to it as a user would: /healthz,
/readyz, the image's own HEALTHCHECK, and tools/list + tools/call with the MCP SDK's Client against the
bundled petstore backend on loopback.

The tools are installed with apt when CI=true (tests.conftest.debian_tool); elsewhere the tests skip
without them. Index settings of the host's pip (a mirror, extra indexes, a CA) are passed into the build
as PIP_* build arguments, and local paths they name are mounted read-only.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest

from adapters.petstore import MAPPING, SPEC
from tests.conftest import ROOT, ServerThread, debian_tool, free_port
from tests.gateway_harness import connect, text_of

pytestmark = pytest.mark.timeout(900)

BASE_IMAGE = "localhost/gateway-base:bookworm"
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = os.environ.get("GATEWAY_TEST_DEBIAN_MIRROR", "http://deb.debian.org/debian")
UID = 10001
PIP_SETTINGS = ("index-url", "extra-index-url", "trusted-host", "cert", "default-timeout", "find-links", "constraint")
"""The pip settings passed into the build (the Dockerfile declares a PIP_* build argument for each)."""


def run(command: list[str], timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        pytest.fail(f"`{shlex.join(command)}` failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-4000:]}")
    return done


@dataclass
class Tools:
    podman: str
    buildah: str
    debootstrap: str


@pytest.fixture(scope="module")
def tools() -> Tools:
    if os.geteuid() != 0:
        pytest.skip("building and running images with buildah's chroot isolation needs root")
    found = {name: debian_tool(name, name) for name in ("podman", "buildah", "debootstrap")}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} missing (Debian: apt-get install {' '.join(missing)})")
    return Tools(**found)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def base_image(tools: Tools) -> str:
    """A minimal Debian with python3 + python3-venv, imported into podman's storage once and then reused."""
    if run([tools.podman, "image", "exists", BASE_IMAGE], check=False).returncode == 0:
        return BASE_IMAGE
    with tempfile.TemporaryDirectory(prefix="gateway-base-") as folder:
        rootfs = Path(folder) / "root"
        run([tools.debootstrap, "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
             DEBIAN_SUITE, str(rootfs), DEBIAN_MIRROR], timeout=600)
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"):
            for entry in (rootfs / cache).glob("*"):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run([tools.podman, "import", "-", BASE_IMAGE], stdin=tar.stdout, capture_output=True,
                                  text=True, timeout=300, check=False)
        assert tar.stdout is not None
        tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            pytest.fail(f"podman import failed: {imported.stderr[-2000:]}")
    return BASE_IMAGE


def host_pip_settings() -> tuple[list[str], list[str]]:
    """Build arguments and read-only mounts that give pip in the build the host's pip settings.

    `pip config list` gives the merged settings of every pip.conf and the PIP_* environment; `global.`,
    then `install.`, then environment values win, as they do for `pip install`.
    """
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                            timeout=60, check=False).stdout
    settings: dict[str, str] = {}
    for section in ("global", "install", ":env:"):
        for entry in listed.splitlines():
            key, _, value = entry.partition("=")
            if key.startswith(section + ".") and key[len(section) + 1:] in PIP_SETTINGS:
                settings[key[len(section) + 1:]] = value.strip().strip("'\"")
    args: list[str] = []
    mounts: set[str] = set()
    for key, value in settings.items():
        args += ["--build-arg", f"PIP_{key.upper().replace('-', '_')}={value}"]
        for item in value.split():
            path = urlsplit(item).path if item.startswith("file:") else item
            if not path.startswith("/") or not Path(path).exists() or path.startswith("/etc/ssl/certs"):
                continue
            if Path(path).name == "simple":  # a local PEP 503 index links to files beside `simple/`
                path = str(Path(path).parent)
            mounts.add(path)
    volumes = [arg for path in sorted(mounts) for arg in ("-v", f"{path}:{path}:ro")]
    return args, volumes


@pytest.fixture(scope="module")
def image(tools: Tools, base_image: str) -> Iterator[str]:
    tag = f"localhost/gateway-test:{uuid.uuid4().hex[:12]}"
    build_args, volumes = host_pip_settings()
    started = time.monotonic()
    run([tools.podman, "build", "--isolation", "chroot", "--format", "docker", "--layers=false",
         "-v", "/etc/ssl/certs:/etc/ssl/certs:ro", *volumes, *build_args,
         "--build-arg", f"BASE={base_image}", "-t", tag, str(ROOT)], timeout=900)
    size = run([tools.podman, "image", "inspect", "--format", "{{.Size}}", tag]).stdout.strip()
    print(f"\nbuilt {tag} on {base_image} in {time.monotonic() - started:.0f} s: {int(size) / 1e6:.0f} MB")
    try:
        yield tag
    finally:
        run([tools.podman, "rmi", "--force", tag], check=False)


@pytest.fixture(scope="module")
def image_config(tools: Tools, image: str) -> dict:
    return json.loads(run([tools.podman, "image", "inspect", image]).stdout)[0]


@dataclass
class Container:
    """A working container of the image, with the arguments that make its root read-only."""

    name: str
    rootfs: Path
    read_only: list[str]

    def command(self, tools: Tools, config: Path, *argv: str) -> list[str]:
        """`argv` run as the image's own user (no --user: what USER in the Dockerfile says)."""
        return [tools.buildah, "run", "--isolation", "chroot", *self.read_only, "-v", f"{config}:/config:ro",
                self.name, "--", *argv]


@pytest.fixture(scope="module")
def container(tools: Tools, image: str) -> Iterator[Container]:
    name = run([tools.buildah, "from", image]).stdout.strip().splitlines()[-1]
    try:
        rootfs = Path(run([tools.buildah, "mount", name]).stdout.strip())
        # buildah writes /run/.containerenv and /etc/hosts itself: /run stays as the image has it (root's
        # 0755 directory, so not writable by the gateway's user either); /tmp is the tmpfs the docs name.
        read_only = [arg for entry in sorted(rootfs.iterdir())
                     if entry.is_dir() and not entry.is_symlink()
                     and entry.name not in ("dev", "proc", "sys", "tmp", "run", "config")
                     for arg in ("-v", f"{entry}:/{entry.name}:ro")]
        yield Container(name, rootfs, [*read_only, "--mount", "type=tmpfs,destination=/tmp"])
    finally:
        run([tools.buildah, "rm", name], check=False)


def config_folder(folder: Path, backend_url: str, port: int, auth: bool = True) -> Path:
    """A /config folder as a user would mount it: gateway.yaml and the petstore spec and mapping."""
    (folder / "petstore").mkdir(parents=True)
    shutil.copy(SPEC, folder / "petstore" / "openapi.yaml")
    shutil.copy(MAPPING, folder / "petstore" / "mapping.yaml")
    auth_line = "  auth: {mode: none}   # a test on loopback; real deployments use mode: oauth\n" if auth else ""
    (folder / "gateway.yaml").write_text(
        "version: 1\n"
        "server:\n"
        "  host: 0.0.0.0\n"
        f"  port: {port}\n"
        "  allowed_hosts: ['127.0.0.1:*', 'localhost:*']\n"
        f"{auth_line}"
        "backends:\n"
        "  - name: petstore\n"
        "    spec: petstore/openapi.yaml\n"
        "    mapping: petstore/mapping.yaml\n"
        f"    upstream: {backend_url}/api\n",
        encoding="utf-8")
    for path in [folder, *folder.rglob("*")]:  # readable by the image's user, uid 10001
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        with contextlib.suppress(OSError):
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
            children.setdefault(int(fields["PPid"]), []).append(int(fields["Pid"]))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def gateway_process(parent: int) -> int | None:
    """The Python process running `gateway serve` under `parent` (the `buildah run` we started)."""
    for pid in descendants(parent):
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if Path(argv[0].decode()).name.startswith("python") and b"serve" in argv:
                return pid
    return None


@dataclass
class Served:
    url: str
    process: subprocess.Popen[str]
    log: Path
    config: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]


@pytest.fixture(scope="module")
def served(tools: Tools, container: Container, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    from adapters.petstore.backend import create_app

    work = tmp_path_factory.mktemp("container")
    with ServerThread(create_app()) as backend:
        port = free_port()
        config = config_folder(work / "config", backend.url, port)
        log = work / "gateway.log"
        with log.open("w") as out:
            process = subprocess.Popen(container.command(tools, config, "gateway", "serve", "--config",
                                                         "/config/gateway.yaml"),
                                       stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        served = Served(f"http://127.0.0.1:{port}", process, log, config)
        try:
            deadline = time.monotonic() + 90
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{served.url}/healthz", timeout=2).status_code == 200:
                        break
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the gateway did not come up (exit {process.poll()}):\n{served.output()}")
                time.sleep(0.5)
            yield served
        finally:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


def test_image_is_small_non_root_and_has_no_build_tools(image_config, container):
    config = image_config["Config"]
    assert config["User"] == f"{UID}:{UID}"
    assert config["Entrypoint"] == ["gateway"]
    assert config["Cmd"] == ["serve", "--config", "/config/gateway.yaml"]  # host and port: the config's
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["PATH"].startswith("/opt/gateway/bin:") and env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert "8080/tcp" in config["ExposedPorts"]
    root = container.rootfs
    assert f"gateway:x:{UID}:{UID}:" in (root / "etc/passwd").read_text()
    assert (root / "opt/gateway/bin/gateway").is_file()
    assert not (root / "opt/gateway/bin/pip").exists(), "pip is removed from the final image's venv"
    tools = [f"usr/bin/{name}" for name in ("gcc", "cc", "c++", "g++", "make", "ld")]
    assert [t for t in tools if (root / t).exists()] == [], "no compilers in the final image"
    assert not (root / "root/.cache").exists() and not list((root / "tmp").iterdir())
    assert not (root / "src").exists(), "the build stage's sources stay in the build stage"
    assert int(image_config["Size"]) < 600_000_000  # Debian + Python ~160 MB, the venv ~220 MB (numpy...)


def test_refuses_to_listen_beyond_loopback_without_auth(tools, container, tmp_path):
    config = config_folder(tmp_path / "config", "http://127.0.0.1:9", free_port(), auth=False)
    done = run(container.command(tools, config, "gateway", "serve", "--config", "/config/gateway.yaml"),
               timeout=120, check=False)
    assert done.returncode != 0
    assert "server.auth" in done.stderr + done.stdout and "0.0.0.0" in done.stderr + done.stdout


def test_health_and_readiness(served):
    assert httpx.get(f"{served.url}/healthz", timeout=5).json() == {"status": "ok"}
    ready = httpx.get(f"{served.url}/readyz", timeout=5)
    assert ready.status_code == 200 and ready.json() == {"status": "ready", "tools": 9}


@pytest.mark.anyio
async def test_tools_list_and_call_through_the_container(served):
    async with connect(f"{served.url}/mcp") as client:
        tools = [tool.name for tool in (await client.list_tools()).tools]
        assert tools[:3] == ["list_pets", "create_pet", "get_pet"] and len(tools) == 9
        listed = await client.call_tool("list_pets", {"status": "available"})
    assert not listed.is_error, text_of(listed)
    assert {pet["name"] for pet in listed.structured_content} >= {"Rex", "Nemo"}


def test_gateway_process_runs_as_the_non_root_user(served):
    pid = gateway_process(served.process.pid)
    assert pid is not None, f"no gateway process under buildah run {served.process.pid}:\n{served.output()}"
    status = dict(line.split(":\t", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                  if ":\t" in line)
    assert status["Uid"].split() == [str(UID)] * 4
    assert status["Gid"].split() == [str(UID)] * 4
    assert int(status["CapEff"], 16) == 0, "no capabilities"


def test_image_healthcheck_passes_against_the_running_gateway(tools, container, image_config, served, tmp_path):
    check = image_config["Healthcheck"]["Test"]
    assert check[0] == "CMD"
    assert run(container.command(tools, served.config, *check[1:]), check=False).returncode == 0
    elsewhere = config_folder(tmp_path / "config", "http://127.0.0.1:9", free_port())  # nothing listens there
    assert run(container.command(tools, elsewhere, *check[1:]), check=False).returncode != 0


def test_root_filesystem_is_read_only_except_tmp(tools, container, served):
    probe = ("import errno, json, os\n"
             "out = {}\n"
             "for p in ['/opt/gateway/x', '/etc/x', '/usr/x', '/var/x', '/home/x', '/config/x', '/x', '/run/x',"
             " '/tmp/x']:\n"
             "    try:\n"
             "        open(p, 'w').close(); out[p] = 'written'\n"
             "    except OSError as e:\n"
             "        out[p] = errno.errorcode[e.errno]\n"
             "print(json.dumps(out))\n")
    done = run(container.command(tools, served.config, "python", "-c", probe))
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result.pop("/tmp/x") == "written"
    assert result.pop("/x") == result.pop("/run/x") == errno.errorcode[errno.EACCES]  # root's, mode 0755
    assert set(result.values()) == {errno.errorcode[errno.EROFS]}, result


def test_stops_on_sigterm(served):
    """Last: SIGTERM (what Kubernetes and `docker stop` send) stops the gateway promptly and without a traceback.

    uvicorn shuts down gracefully and then re-raises the signal, so the process ends "terminated" (exit
    143 under Docker), which `buildah run` reports as such.
    """
    pid = gateway_process(served.process.pid)
    assert pid is not None
    started = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    code = served.process.wait(timeout=60)
    assert time.monotonic() - started < 30
    output = served.output()
    assert code == 0 or "exited on terminated" in output, output
    assert "Traceback" not in output and "killed" not in output
