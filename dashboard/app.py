"""The dashboard's HTTP app: the page, its state, the charts, a step's episodes and the run files.

Read-only: every route is a GET; a file is served only through dashboard.paths.file_in_run. Every response
forbids content from other origins (the page works offline and cannot be made to load anything else).
"""

from __future__ import annotations

import mimetypes
from functools import lru_cache
from importlib import resources
from pathlib import Path

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import FileResponse, JSONResponse, Response

from dashboard.alerts import AlertSettings
from dashboard.paths import PathRefused, file_in_run
from dashboard.plots import chart_series, render_chart
from dashboard.state import Dashboard

STATIC_FILES = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; object-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


def static_text(name: str) -> str:
    return resources.files("dashboard").joinpath("static", name).read_text(encoding="utf-8")


def build_app(runs_dir: Path, settings: AlertSettings | None = None, poll_seconds: float = 2.0) -> FastAPI:
    dashboard = Dashboard(Path(runs_dir), settings)
    app = FastAPI(title="rft dashboard", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def security_headers(request, call_next):  # type: ignore[no-untyped-def]
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    add_page_routes(app, dashboard, poll_seconds)
    add_chart_routes(app, dashboard)
    add_run_routes(app, dashboard)
    return app


def add_page_routes(app: FastAPI, dashboard: Dashboard, poll_seconds: float) -> None:
    """The page, its static files and the state it polls."""

    @app.get("/")
    def page() -> Response:
        html = static_text("index.html").replace("{{POLL_MS}}", str(int(poll_seconds * 1000)))
        return Response(html, media_type="text/html")

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name not in STATIC_FILES:
            raise HTTPException(404, "no such static file")
        return Response(static_text(name), media_type=STATIC_FILES[name])

    @app.get("/api/state")
    def state() -> JSONResponse:
        return JSONResponse(dashboard.refresh())


def add_chart_routes(app: FastAPI, dashboard: Dashboard) -> None:
    """A chart's SVG and where its points are drawn, rendered once per chart and runs version."""

    @lru_cache(maxsize=256)
    def chart(chart_id: str, version: str) -> tuple[bytes, list]:
        lines = chart_series(chart_id, dashboard.curves)
        title = "time per step (s)" if chart_id == "time" else chart_id[2:]
        return render_chart(title, lines, list(dashboard.curves))

    @app.get("/api/chart.svg")
    def chart_svg(id: str = Query(..., max_length=300), v: str = Query("", max_length=40)) -> Response:
        if not dashboard.curves:
            dashboard.refresh()
        return Response(chart(id, dashboard.version)[0], media_type="image/svg+xml")

    @app.get("/api/chart_points")
    def chart_points(id: str = Query(..., max_length=300), v: str = Query("", max_length=40)) -> JSONResponse:
        """Where each point of the chart is drawn (fractions of its size): the page's image map."""
        if not dashboard.curves:
            dashboard.refresh()
        return JSONResponse({"id": id, "points": chart(id, dashboard.version)[1]})


def add_run_routes(app: FastAPI, dashboard: Dashboard) -> None:
    """A run's step (GRPO groups), evaluation samples and files, each confined to that run's folder."""

    def known_run(run: str) -> str:
        if run not in dashboard.runs:
            dashboard.refresh()
        if run not in dashboard.runs:
            raise HTTPException(404, f"no run {run!r} under the runs folder")
        return run

    @app.get("/api/step")
    def step(run: str = Query(..., max_length=1000), step: int = Query(..., ge=0)) -> JSONResponse:
        try:
            return JSONResponse(dashboard.step_view(known_run(run), step))
        except KeyError as error:
            raise HTTPException(404, str(error.args[0])) from None

    @app.get("/api/eval")
    def evaluation(run: str = Query(..., max_length=1000), step: int = Query(..., ge=0)) -> JSONResponse:
        try:
            return JSONResponse(dashboard.eval_view(known_run(run), step))
        except KeyError as error:
            raise HTTPException(404, str(error.args[0])) from None

    @app.get("/files")
    def files(run: str = Query(..., max_length=1000), path: str = Query(..., max_length=1000)) -> Response:
        run = known_run(run)  # first: a refresh replaces dashboard.runs
        try:
            target = file_in_run(dashboard.runs[run], path)
        except PathRefused as error:
            raise HTTPException(403, f"refused: {error}") from None
        media_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if not media_type.startswith("image/"):
            media_type = "text/plain; charset=utf-8"  # never served as a page or a script
        return FileResponse(target, media_type=media_type)
