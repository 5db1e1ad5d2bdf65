"""HTTP endpoints that pull bars from data providers."""

from fastapi import APIRouter

from quantdesk.api.deps import SessionDep, SettingsDep
from quantdesk.core.errors import NotFound
from quantdesk.market.ingest import IngestReport
from quantdesk.market.providers import service
from quantdesk.market.providers.schemas import AlphaVantageFetch, CoinGeckoFetch, FetchResult, ProviderInfo

router = APIRouter(prefix="/api/v1/providers", tags=["providers"])


def _result(report: IngestReport, provider: str) -> FetchResult:
    return FetchResult.model_validate({**report.__dict__, "provider": provider})


@router.get("", response_model=list[ProviderInfo])
async def list_providers(settings: SettingsDep) -> list[ProviderInfo]:
    return service.list_providers(settings)


@router.post("/alphavantage/fetch", response_model=FetchResult)
async def fetch_alphavantage(session: SessionDep, settings: SettingsDep, body: AlphaVantageFetch) -> FetchResult:
    """Daily bars from Alpha Vantage TIME_SERIES_DAILY; stores only bars not stored yet (and the last one)."""
    return _result(await service.fetch_alphavantage(session, body, settings), "alphavantage")


@router.post("/coingecko/fetch", response_model=FetchResult)
async def fetch_coingecko(session: SessionDep, settings: SettingsDep, body: CoinGeckoFetch) -> FetchResult:
    """1d bars from market_chart, 4h and 1h bars from ohlc; asks only for the days that are missing."""
    return _result(await service.fetch_coingecko(session, body, settings), "coingecko")


@router.post("/{provider}/fetch", include_in_schema=False)
async def fetch_unknown(provider: str) -> None:
    raise NotFound(f"no provider '{provider}'; available: alphavantage, coingecko")
