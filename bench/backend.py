"""The fixed-answer backend (Debian's nginx) and the OpenAPI spec that describes it.

nginx answers from memory in a few microseconds, so whatever a row costs above the direct call is the
MCP server's own cost. It runs with its own prefix and config in the run's temp dir, never the system
configuration, and `return`s the pet (echoing the path id) or serves a fixed ~50 KB JSON file.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
from pathlib import Path

from processes import Processes, Server, free_port, http_get, wait_until

SPEC_PATH = Path(__file__).resolve().parent / "bench-openapi.yaml"
CATALOG_BYTES = 50_000

SPEC = """\
# The benchmark backend's API: generated from bench/backend.py (SPEC), which bench/run.py writes here when it differs.
# Served by nginx on a port chosen at run time: every server gets it with --upstream / base_url.
openapi: 3.0.3
info:
  title: Benchmark backend
  version: "1.0"
servers:
  - url: http://127.0.0.1:9
paths:
  /pets/{id}:
    get:
      operationId: get_pet
      summary: One pet by id
      parameters:
        - name: id
          in: path
          required: true
          schema:
            type: integer
      responses:
        "200":
          description: The pet
          content:
            application/json:
              schema:
                $ref: "#/components/schemas/Pet"
  /catalog:
    get:
      operationId: list_catalog
      summary: The whole catalog (about 50 KB of JSON)
      responses:
        "200":
          description: Every catalog item
          content:
            application/json:
              schema:
                type: array
                items:
                  $ref: "#/components/schemas/CatalogItem"
components:
  schemas:
    Pet:
      type: object
      required: [id, name]
      properties:
        id:
          type: integer
        name:
          type: string
    CatalogItem:
      type: object
      required: [sku, name, price]
      properties:
        sku:
          type: string
        name:
          type: string
        price:
          type: number
        tags:
          type: array
          items:
            type: string
"""


def write_spec() -> Path:
    """Write bench/bench-openapi.yaml unless it already holds exactly this spec (so a checkout stays clean)."""
    if not SPEC_PATH.exists() or SPEC_PATH.read_text() != SPEC:
        SPEC_PATH.write_text(SPEC)
    return SPEC_PATH


def catalog() -> tuple[bytes, str]:
    """The catalog body (a JSON array just over CATALOG_BYTES) and its last SKU: a marker that is only in a
    complete answer, so a truncated or capped list counts as a failure."""
    items: list[dict[str, object]] = []
    size = 2
    while size < CATALOG_BYTES:
        n = len(items) + 1
        item = {"sku": f"SKU-{n:05d}", "name": f"Catalog item number {n}", "price": round(n * 1.25, 2),
                "tags": ["bench", "fixed", f"group-{n % 7}"]}
        items.append(item)
        size += len(json.dumps(item)) + 2
    return json.dumps(items).encode(), str(items[-1]["sku"])


def _user_directive() -> str:
    """As root, nginx would switch its worker to `nobody`, which cannot read the private temp dir: keep root."""
    if os.geteuid() != 0:
        return ""  # nginx ignores `user` when not started as root
    return f"user {pwd.getpwuid(0).pw_name} {grp.getgrgid(0).gr_name};\n"


def nginx_config(prefix: Path, port: int, catalog_file: Path) -> str:
    """A self-contained nginx.conf: one worker (the backend must not eat the cores the servers are measured on),
    keep-alive without a request limit, no access log, temp paths inside the prefix."""
    temp = "\n".join(f"    {name}_temp_path {prefix / ('tmp-' + name)};"
                     for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""{_user_directive()}worker_processes 1;
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
{temp}
    server {{
        listen 127.0.0.1:{port};
        location ~ ^/pets/(?<pet_id>[0-9]+)$ {{
            default_type application/json;
            return 200 '{{"id": $pet_id, "name": "pet-$pet_id"}}';
        }}
        location = /catalog {{
            default_type application/json;
            alias {catalog_file};
        }}
    }}
}}
"""


def start_nginx(procs: Processes, nginx: str, workdir: Path) -> Server:
    """nginx on a free loopback port, in the foreground (so it is our child and dies with the run)."""
    prefix = workdir / "nginx"
    prefix.mkdir()
    body, last_sku = catalog()
    catalog_file = prefix / "catalog.json"
    catalog_file.write_bytes(body)
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_config(prefix, port, catalog_file))
    server = procs.start("nginx", [nginx, "-p", str(prefix), "-c", str(conf), "-e", str(prefix / "error.log"),
                                   "-g", "daemon off;"])
    server.url = f"http://127.0.0.1:{port}"
    server.extra.update(catalog_bytes=len(body), last_sku=last_sku)
    wait_until(server, lambda: b'"pet-1"' in http_get(f"{server.url}/pets/1"), timeout=15)
    if last_sku.encode() not in http_get(f"{server.url}/catalog"):
        raise server.fail("/catalog does not serve the catalog file")
    return server
