"""`gan_lab serve`: the explorer (gan_lab/explorer.py) as a local web app on FastAPI.

The page is plain HTML and JavaScript shipped in gan_lab/static (no build step, nothing fetched from the
internet); the JSON and PNG API below is all it uses, so scripts can use it too:

    GET /api/runs                                   every run under the directory, with its status and FD
    GET /api/runs/{run}/grid.png?seed&n&class&shift&scale   n samples of seed (class: conditional models)
    GET /api/runs/{run}/latents?seed&n&shift        those samples' latents (to hold one as a style)
    GET /api/runs/{run}/wardrobe.png?z&shift&scale  one latent as every class (conditional models)
    GET /api/runs/{run}/walk.png?z0&z1&steps&class&shift&scale   the spherical walk between two latents
    GET /api/runs/{run}/training                    status, step and epoch of a run (watch one training)
    GET /api/runs/{run}/epoch.png, losses.png       its newest epoch grid and its loss curves

Every error is JSON {"error": one line} with a 4xx status.
"""

from __future__ import annotations

import socket
from importlib import resources

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException

from gan_lab import explorer
from gan_lab.errors import UserError

MAX_URL = 16_384  # bytes of path + query: two latents of a few hundred numbers fit many times over
ERROR_STATUS = {explorer.BadRequest: 400, explorer.NotFound: 404, explorer.RunUnreadable: 409}
NO_CACHE = {"Cache-Control": "no-store"}  # a run still training changes under the same URL


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def png_response(body: bytes, cache: bool = True) -> Response:
    return Response(body, media_type="image/png", headers=None if cache else NO_CACHE)


def static_text(name: str) -> str:
    return resources.files("gan_lab").joinpath("static", name).read_text(encoding="utf-8")


def create_app(runs_dir) -> FastAPI:
    catalog = explorer.Catalog(runs_dir)
    app = FastAPI(title="gan_lab explorer", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.catalog = catalog

    @app.middleware("http")
    async def bounded_requests(request: Request, call_next):
        # The API is GET only: a body is refused unread, and so is an absurd URL.
        if len(request.url.path) + len(request.url.query) > MAX_URL:
            return error(414, f"the URL is longer than {MAX_URL} bytes")
        if request.method not in ("GET", "HEAD"):
            return error(405, "the explorer only answers GET requests")
        return await call_next(request)

    @app.exception_handler(UserError)
    async def user_error(request: Request, err: UserError):
        return error(ERROR_STATUS.get(type(err), 400), str(err))

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, err: RequestValidationError):
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"][1:]) or "request"
        return error(400, f"{where}: {first['msg']}")

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException):
        return error(err.status_code, "no such page; the API is under /api/runs" if err.status_code == 404 else str(err.detail))

    # Parameters shared by the pictures, with their bounds (FastAPI checks them; see bad_parameter).
    seed_query = Query(0, ge=0, lt=2**31, description="noise seed")
    n_query = Query(explorer.MAX_IMAGES, ge=1, le=explorer.MAX_IMAGES)
    class_query = Query(None, alias="class", description="class index 0..9 (conditional models)")
    shift_query = Query(None, description=f"up to {explorer.SLIDERS} offsets, comma-separated")
    scale_query = Query(1, ge=1, le=explorer.MAX_SCALE)

    def sliders(shift):
        return explorer.parse_vector(shift, "shift", explorer.SLIDERS, explorer.MAX_SHIFT)

    @app.get("/", response_class=HTMLResponse)
    def page():
        return static_text("explorer.html")

    @app.get("/explorer.js")
    def script():
        return Response(static_text("explorer.js"), media_type="text/javascript")

    @app.get("/api/runs")
    def list_runs():
        return {"root": str(catalog.root), "runs": catalog.describe_all(), "max_images": explorer.MAX_IMAGES,
                "sliders": explorer.SLIDERS, "max_shift": explorer.MAX_SHIFT}

    @app.get("/api/runs/{run_id:path}/grid.png")
    def grid(run_id: str, seed: int = seed_query, n: int = n_query, label: int | None = class_query,
             shift: str | None = shift_query, scale: int = scale_query, columns: int = Query(8, ge=1, le=64)):
        return png_response(explorer.png(catalog.grid(run_id, seed, n, label, sliders(shift)), columns, scale))

    @app.get("/api/runs/{run_id:path}/latents")
    def latents(run_id: str, seed: int = seed_query, n: int = n_query, shift: str | None = shift_query):
        return {"latents": catalog.latents(run_id, seed, n, sliders(shift)).astype(float).round(5).tolist()}

    @app.get("/api/runs/{run_id:path}/wardrobe.png")
    def wardrobe(run_id: str, z: str = Query(..., description="the held latent, comma-separated"),
                 shift: str | None = shift_query, scale: int = scale_query):
        images = catalog.wardrobe(run_id, z, sliders(shift))
        return png_response(explorer.png(images, len(images), scale))

    @app.get("/api/runs/{run_id:path}/walk.png")
    def walk(run_id: str, z0: str = Query(...), z1: str = Query(...), steps: int = Query(16, ge=2, le=explorer.MAX_IMAGES),
             label: int | None = class_query, shift: str | None = shift_query, scale: int = scale_query):
        images = catalog.walk(run_id, z0, z1, steps, label, sliders(shift))
        return png_response(explorer.png(images, len(images), scale))

    @app.get("/api/runs/{run_id:path}/training")
    def training(run_id: str):
        return JSONResponse(catalog.training_view(run_id), headers=NO_CACHE)

    @app.get("/api/runs/{run_id:path}/epoch.png")
    def newest_epoch(run_id: str):
        return png_response(catalog.newest_epoch_grid(run_id), cache=False)

    @app.get("/api/runs/{run_id:path}/losses.png")
    def losses(run_id: str):
        return png_response(catalog.loss_curves(run_id), cache=False)

    return app


def check_port_free(host: str, port: int) -> None:
    """A taken port is one line now, not uvicorn's log and exit later."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError as err:
            raise UserError(f"cannot listen on {host}:{port} ({err.strerror}); pick another --port") from None


def serve(runs_dir, host: str, port: int) -> None:
    import uvicorn

    app = create_app(runs_dir)
    check_port_free(host, port)
    count = len(app.state.catalog.run_dirs())
    url_host = f"[{host}]" if ":" in host else host
    print(f"gan_lab explorer: http://{url_host}:{port}/  ({count} runs under {app.state.catalog.root}; Ctrl-C stops)",
          flush=True)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"note: listening on {host}, not only this machine: anyone who can reach it can see these runs",
              flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
