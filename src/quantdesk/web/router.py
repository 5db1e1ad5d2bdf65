"""The dashboard's routes, its own static files, and Plotly.js from the installed plotly package."""

from importlib.metadata import version
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from quantdesk.web import errors
from quantdesk.web.pages import accounts, community, markets, research, signin, strategies

STATIC = Path(__file__).parent / "static"
PLOTLY_JS = Path(str(files("plotly") / "package_data" / "plotly.min.js"))
PLOTLY_VERSION = version("plotly")
CACHE_A_DAY = {"Cache-Control": "public, max-age=86400"}

router = APIRouter(include_in_schema=False)
for pages in (markets, research, strategies, accounts, community, signin):
    router.include_router(pages.router)


@router.get("/dashboard/plotly.min.js", name="plotly_js")
async def plotly_js() -> FileResponse:
    """Served by quantdesk itself: the dashboard works on a machine without internet access."""
    return FileResponse(PLOTLY_JS, media_type="text/javascript", headers=CACHE_A_DAY)


def install(app: FastAPI) -> None:
    app.include_router(router)
    app.mount("/dashboard/static", StaticFiles(directory=STATIC), name="dashboard_static")
    errors.install(app)
