"""A small, real petstore REST backend (Starlette), the upstream of `gateway demo` and of the tests.

It keeps its pets in memory, per app instance, and answers exactly what `openapi.yaml` describes,
including its error responses, so the gateway can be exercised end to end with nothing external.
Run it alone with `python -m adapters.petstore.backend --port 9000`.
"""

from __future__ import annotations

import argparse
import secrets
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

STATUSES = ("available", "pending", "sold")


@dataclass
class Store:
    pets: dict[int, dict[str, Any]] = field(default_factory=dict)
    orders: list[dict[str, Any]] = field(default_factory=list)
    next_id: int = 1

    def add(self, pet: dict[str, Any]) -> dict[str, Any]:
        stored = {"id": self.next_id, "name": pet["name"], "tag": pet.get("tag"),
                  "status": pet.get("status", "available")}
        self.pets[self.next_id] = stored
        self.next_id += 1
        return stored


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


def _pet_fields(body: Any) -> dict[str, Any] | str:
    """The NewPet fields of a request body, or a message saying what is wrong with it."""
    if not isinstance(body, dict):
        return "body must be a JSON object"
    name = body.get("name")
    if not isinstance(name, str) or not name:
        return "name is required"
    if body.get("status", "available") not in STATUSES:
        return f"status must be one of {', '.join(STATUSES)}"
    tag = body.get("tag")
    if tag is not None and not isinstance(tag, str):
        return "tag must be a string or null"
    return {"name": name, "tag": tag, "status": body.get("status", "available")}


def create_app(seed: bool = True, api_key: str | None = None) -> Starlette:
    """The backend; with `api_key`, every request must carry it in `X-Api-Key` (401 otherwise)."""
    store = Store()
    if seed:
        for name, tag, status in [("Rex", "dog", "available"), ("Tom", "cat", "sold"),
                                  ("Nemo", "fish", "available"), ("Polly", "bird", "pending")]:
            store.add({"name": name, "tag": tag, "status": status})

    async def list_pets(request: Request) -> Response:
        try:
            limit = int(request.query_params.get("limit", "20"))
        except ValueError:
            return _error(400, "limit must be an integer")
        status = request.query_params.get("status")
        tags = [t for t in request.query_params.get("tags", "").split(",") if t]
        pets = [p for p in store.pets.values()
                if (status is None or p["status"] == status) and all(p["tag"] == t for t in tags)]
        return JSONResponse(pets[:limit])

    async def read_pet(request: Request) -> dict[str, Any] | Response:
        """The NewPet fields of the request body, or the 400 answer saying what is wrong with it."""
        try:
            fields = _pet_fields(await request.json())
        except ValueError:
            return _error(400, "body is not JSON")
        return _error(400, fields) if isinstance(fields, str) else fields

    async def create_pet(request: Request) -> Response:
        fields = await read_pet(request)
        return fields if isinstance(fields, Response) else JSONResponse(store.add(fields), status_code=201)

    def _find(request: Request) -> dict[str, Any] | None:
        return store.pets.get(int(request.path_params["pet_id"]))

    async def get_pet(request: Request) -> Response:
        pet = _find(request)
        return JSONResponse(pet) if pet else _error(404, f"pet {request.path_params['pet_id']} not found")

    async def update_pet(request: Request) -> Response:
        pet = _find(request)
        if pet is None:
            return _error(404, f"pet {request.path_params['pet_id']} not found")
        fields = await read_pet(request)
        if isinstance(fields, Response):
            return fields
        pet.update(fields)
        return JSONResponse(pet)

    async def delete_pet(request: Request) -> Response:
        if store.pets.pop(int(request.path_params["pet_id"]), None) is None:
            return _error(404, f"pet {request.path_params['pet_id']} not found")
        return Response(status_code=204)

    async def upload_photo(request: Request) -> Response:
        if _find(request) is None:
            return _error(404, f"pet {request.path_params['pet_id']} not found")
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            return _error(400, "file part is required")
        content = await upload.read()
        return JSONResponse({"petId": int(request.path_params["pet_id"]),
                             "caption": form.get("caption") or "", "bytes": len(content)})

    async def list_tags(request: Request) -> Response:
        return JSONResponse(sorted({p["tag"] for p in store.pets.values() if p["tag"]}))

    async def place_order(request: Request) -> Response:
        form = await request.form()
        try:
            pet_id, quantity = int(str(form["petId"])), int(str(form["quantity"]))
        except (KeyError, ValueError):
            return _error(400, "petId and quantity are required integers")
        if pet_id not in store.pets:
            return _error(404, f"pet {pet_id} not found")
        order = {"id": len(store.orders) + 1, "petId": pet_id, "quantity": quantity,
                 "note": str(form.get("note") or ""), "status": "placed"}
        store.orders.append(order)
        return JSONResponse(order)

    async def inventory(request: Request) -> Response:
        counts = {status: 0 for status in STATUSES}
        for pet in store.pets.values():
            counts[pet["status"]] += 1
        return JSONResponse(counts)

    async def report(request: Request) -> Response:
        lines = [f"{p['id']}\t{p['name']}\t{p['status']}" for p in store.pets.values()]
        return PlainTextResponse("\n".join(["id\tname\tstatus", *lines]))

    async def require_key(request: Request, call_next: Any) -> Response:
        if api_key is not None and not secrets.compare_digest(request.headers.get("x-api-key", ""), api_key):
            return _error(401, "a valid X-Api-Key header is required")
        return await call_next(request)

    return Starlette(middleware=[Middleware(BaseHTTPMiddleware, dispatch=require_key)], routes=[
        Route("/api/pets", list_pets, methods=["GET"]),
        Route("/api/pets", create_pet, methods=["POST"]),
        Route("/api/pets/{pet_id:int}", get_pet, methods=["GET"]),
        Route("/api/pets/{pet_id:int}", update_pet, methods=["PUT"]),
        Route("/api/pets/{pet_id:int}", delete_pet, methods=["DELETE"]),
        Route("/api/pets/{pet_id:int}/photos", upload_photo, methods=["POST"]),
        Route("/api/tags", list_tags, methods=["GET"]),
        Route("/api/store/orders", place_order, methods=["POST"]),
        Route("/api/store/inventory", inventory, methods=["GET"]),
        Route("/api/store/report", report, methods=["GET"]),
    ])


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description="The petstore example backend.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
