"""The gateway config: loading, relative paths, errors at file:line, and the command-line equivalent."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gateway.config import BackendConfig, GatewayConfig, ServerSettings, config_from_args, load_config
from gateway.errors import ConfigError
from tests.conftest import ROOT


def write(folder: Path, text: str, name: str = "gateway.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def line(path: Path, needle: str, occurrence: int = 1) -> str:
    found = [n for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in text]
    return f"{path}:{found[occurrence - 1]}"


def load_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return str(info.value)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with a spec and a mapping in a subfolder, next to where configs are written."""
    (tmp_path / "api").mkdir()
    (tmp_path / "api" / "openapi.yaml").write_text("openapi: 3.0.3\n", encoding="utf-8")
    (tmp_path / "api" / "mapping.yaml").write_text("version: 1\n", encoding="utf-8")
    (tmp_path / "conf").mkdir()
    return tmp_path


def test_example_config_loads_with_paths_relative_to_it() -> None:
    config = load_config(ROOT / "config" / "gateway.yaml")
    assert config.server == ServerSettings()  # the example spells out the defaults
    (backend,) = config.backends
    assert backend.name == "petstore"
    assert backend.spec == str(ROOT / "adapters" / "petstore" / "openapi.yaml")
    assert backend.mapping == ROOT / "adapters" / "petstore" / "mapping.yaml"
    assert backend.upstream == "http://127.0.0.1:9000"


def test_full_config(project: Path) -> None:
    path = write(project / "conf", """
        version: 1
        server:
          name: my-gateway
          instructions: Pets and more.
          host: 0.0.0.0
          port: 9999
          path: /tools/mcp
          allowed_hosts: [mcp.example.com]
          allowed_origins: ["https://chatgpt.com"]
          log_level: debug
          max_request_bytes: 2048
        backends:
          - name: pets
            spec: ../api/openapi.yaml
            mapping: ../api/mapping.yaml
            upstream: https://pets.example.com/v2
            timeout_connect: 1.5
            timeout_read: 12
            max_connections: 7
            tool_prefix: pets_
            headers: {User-Agent: gw-test, X-Api-Version: "2"}
          - name: remote
            spec: https://example.com/openapi.json
    """)
    config = load_config(path)
    assert isinstance(config, GatewayConfig)
    assert config.server == ServerSettings(
        host="0.0.0.0", port=9999, path="/tools/mcp", allowed_hosts=("mcp.example.com",),
        allowed_origins=("https://chatgpt.com",), log_level="debug", max_request_bytes=2048, name="my-gateway",
        instructions="Pets and more.")
    pets, remote = config.backends
    assert pets == BackendConfig(
        name="pets", spec=str(project / "api" / "openapi.yaml"), mapping=project / "api" / "mapping.yaml",
        upstream="https://pets.example.com/v2", timeout_connect=1.5, timeout_read=12, max_connections=7,
        tool_prefix="pets_", headers={"User-Agent": "gw-test", "X-Api-Version": "2"},
        where=line(path, "- name: pets"))
    assert remote == BackendConfig(name="remote", spec="https://example.com/openapi.json",
                                   where=line(path, "- name: remote"))


def test_relative_config_path_resolves_against_its_folder(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(project / "conf", "version: 1\nbackends:\n  - {name: a, spec: ../api/openapi.yaml}\n")
    monkeypatch.chdir(project)
    (backend,) = load_config("conf/gateway.yaml").backends
    assert backend.spec == str(project / "api" / "openapi.yaml")
    assert backend.where == "conf/gateway.yaml:3"


def test_duplicate_backend_names_name_both_lines(project: Path) -> None:
    path = write(project / "conf", """
        version: 1
        backends:
          - name: pets
            spec: ../api/openapi.yaml
          - name: pets
            spec: ../api/openapi.yaml
    """)
    assert load_error(path) == (f"{line(path, 'name: pets', 2)}: backends[1].name: backend name 'pets' is already "
                                f"used by backends[0] at {line(path, 'name: pets', 1)}")


def test_bad_upstream_url(project: Path) -> None:
    path = write(project / "conf", """
        version: 1
        backends:
          - name: pets
            spec: ../api/openapi.yaml
            upstream: ftp://files.example.com
          - name: other
            spec: ../api/openapi.yaml
            upstream: http://
    """)
    assert load_error(path).splitlines() == [
        f"{line(path, 'ftp://')}: backends[0].upstream: must be an http:// or https:// URL with a host, "
        "e.g. http://127.0.0.1:9000 (got \"ftp://files.example.com\")",
        f"{line(path, 'http://')}: backends[1].upstream: must be an http:// or https:// URL with a host, "
        "e.g. http://127.0.0.1:9000 (got \"http://\")",
    ]


def test_at_least_one_backend(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\nbackends: []\n")
    assert load_error(path) == f"{path}:2: backends: must list at least 1 item (got [])"
    path = write(tmp_path, "version: 1\nserver: {port: 80}\n")
    assert load_error(path) == f"{path}:1: backends: is required but missing"


def test_missing_files_and_mapping_urls(project: Path) -> None:
    path = write(project / "conf", """
        version: 1
        backends:
          - name: pets
            spec: ../api/nope.yaml
            mapping: https://example.com/mapping.yaml
    """)
    assert load_error(path).splitlines() == [
        f"{line(path, 'nope.yaml')}: backends[0].spec: no such file: {project / 'api' / 'nope.yaml'}",
        f"{line(path, 'mapping:')}: backends[0].mapping: must be a file path, not a URL "
        "(https://example.com/mapping.yaml)",
    ]


def test_unknown_keys_and_bad_values(project: Path) -> None:
    path = write(project / "conf", """
        version: 1
        server:
          prot: 80
          log_level: verbose
          path: mcp
        backends:
          - name: pets
            spec: ../api/openapi.yaml
            upstram: http://127.0.0.1:9000
            headers:
              Bad Header: x
    """)
    assert load_error(path).splitlines() == [
        f"{line(path, 'prot')}: server.prot: unknown key 'prot' (did you mean 'port'?)",
        f"{line(path, 'verbose')}: server.log_level: must be one of: \"debug\", \"info\", \"warning\", \"error\" "
        "(got \"verbose\")",
        f"{line(path, 'path: mcp')}: server.path: must start with \"/\" (got \"mcp\")",
        f"{line(path, 'upstram')}: backends[0].upstram: unknown key 'upstram' (did you mean 'upstream'?)",
        f"{line(path, 'Bad Header')}: backends[0].headers[\"Bad Header\"]: \"Bad Header\" is not allowed as a name "
        "here: must be a valid HTTP header name",
    ]


def test_config_from_args(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    config = config_from_args("api/openapi.yaml", mapping="api/mapping.yaml", upstream="http://127.0.0.1:9000",
                              host="0.0.0.0", port=9000)
    assert config == GatewayConfig(
        server=ServerSettings(host="0.0.0.0", port=9000),
        backends=(BackendConfig(name="default", spec=str(project / "api" / "openapi.yaml"),
                                mapping=project / "api" / "mapping.yaml", upstream="http://127.0.0.1:9000",
                                where="command line"),),
    )
    assert config_from_args("https://example.com/spec.json").backends[0].spec == "https://example.com/spec.json"
    assert config_from_args("api/openapi.yaml").server == ServerSettings()


def test_config_from_args_errors_name_the_flags(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(project)
    with pytest.raises(ConfigError) as info:
        config_from_args("api/openapi.yaml", upstream="localhost:9000", port=70000)
    assert str(info.value).splitlines() == [
        "--port: must be at most 65535 (got 70000)",
        "--upstream: must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:9000 "
        "(got \"localhost:9000\")",
    ]
    with pytest.raises(ConfigError) as info:
        config_from_args("missing.yaml")
    assert str(info.value) == f"--spec: no such file: {project / 'missing.yaml'}"
