"""The gateway config: loading, relative paths, errors at file:line, and the command-line equivalent."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.auth.settings import InboundAuth
from gateway.config import BackendConfig, GatewayConfig, ServerSettings, config_from_args, load_config
from gateway.errors import ConfigError
from tests.conftest import ROOT, line, write_text


def write(folder: Path, text: str, name: str = "gateway.yaml") -> Path:
    return write_text(folder, text, name)


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
    assert backend.upstream == "http://127.0.0.1:9000/api"


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
          auth: {mode: none}
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
        instructions="Pets and more.", auth=InboundAuth(mode="none"))
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


def test_numbers_json_cannot_carry_are_errors_at_their_line(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\nbackends:\n  - name: a\n    spec: x.yaml\n    timeout: .inf\n")
    assert load_error(path).startswith(f"{path}:5: backends[0].timeout: .inf is not a number JSON can carry")


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
                              host="0.0.0.0", port=9000, no_auth=True)
    assert config == GatewayConfig(
        server=ServerSettings(host="0.0.0.0", port=9000, auth=InboundAuth(mode="none")),
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


def test_auth_settings_with_secret_references(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret_file = project / "conf" / "client-secret"
    secret_file.write_text("s3cret-from-file\n", encoding="utf-8")
    monkeypatch.setenv("PETS_API_KEY", "k3y-from-env")
    path = write(project / "conf", """
        version: 1
        server:
          host: 0.0.0.0
          auth: {mode: oauth, issuer: "https://idp.example.com", resource_url: "https://mcp.example.com/mcp",
                 required_scopes: [mcp]}
          rate_limits: {per_caller: 60/minute}
          audit: {log_arguments: true}
        backends:
          - name: pets
            spec: ../api/openapi.yaml
            auth: {type: api_key, name: X-Api-Key, value: "${PETS_API_KEY}"}
            max_concurrency: 4
          - name: orders
            spec: ../api/openapi.yaml
            auth: {type: oauth_client_credentials, token_url: "https://idp.example.com/token",
                   client_id: gateway, client_secret: "file:client-secret", scopes: [orders.read]}
    """)
    config = load_config(path)
    assert config.server.auth.mode == "oauth" and config.server.auth.required_scopes == ("mcp",)
    assert config.server.rate_limits.per_caller == "60/minute" and config.server.audit.log_arguments
    pets, orders = config.backends
    assert pets.auth.value.reveal() == "k3y-from-env" and pets.max_concurrency == 4
    assert "k3y-from-env" not in repr(pets)  # secrets never print
    assert orders.auth.client_secret.reveal() == "s3cret-from-file" and orders.auth.scopes == ("orders.read",)


def test_secrets_must_be_references(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(project / "conf", """
        version: 1
        backends:
          - name: pets
            spec: ../api/openapi.yaml
            auth: {type: bearer, value: plain-text-token}
    """)
    message = load_error(path)
    assert f"{line(path, 'plain-text-token')}: backends[0].auth.value: must be a reference" in message
    assert "plain-text-token" not in message  # an inline secret is not echoed back
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    path = write(project / "conf", """
        version: 1
        backends:
          - name: more
            spec: ../api/openapi.yaml
            auth: {type: basic, username: u, password: "${NOT_SET_ANYWHERE}"}
    """)
    message = load_error(path)
    assert f"{line(path, 'NOT_SET_ANYWHERE')}: backends[0].auth.password:" in message
    assert "NOT_SET_ANYWHERE" in message


def test_listening_beyond_loopback_needs_an_explicit_auth_choice(project: Path) -> None:
    path = write(project / "conf", """
        version: 1
        server: {host: 0.0.0.0}
        backends: [{name: pets, spec: ../api/openapi.yaml}]
    """)
    assert "server.auth: the gateway listens on 0.0.0.0" in load_error(path)
    spec = str(project / "api" / "openapi.yaml")
    with pytest.raises(ConfigError, match="--auth-issuer"):
        config_from_args(spec=spec, host="0.0.0.0")
    assert config_from_args(spec=spec, host="0.0.0.0", no_auth=True).server.auth.mode == "none"
    oauth = config_from_args(spec=spec, auth_issuer="https://idp.example.com",
                             resource_url="https://mcp.example.com/mcp", required_scopes=("a", "b"))
    assert (oauth.server.auth.mode, oauth.server.auth.issuer, oauth.server.auth.required_scopes) == (
        "oauth", "https://idp.example.com", ("a", "b"))
    with pytest.raises(ConfigError, match="--resource-url"):
        config_from_args(spec=spec, auth_issuer="https://idp.example.com")
