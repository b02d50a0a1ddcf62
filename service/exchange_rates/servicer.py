"""The exchange rate rpcs of AllocationService: decode, call one use case, encode."""

from __future__ import annotations

from typing import Any

from invoicing.v1 import allocations_pb2 as pb

from service.edge import pbconv
from service.edge.runtime import Runtime
from service.exchange_rates import convert, service
from service.exchange_rates.queries import EXCHANGE_RATES
from service.kit import db, listing
from service.kit.auth import Principal


class ExchangeRateServicer:
    def __init__(self, runtime: Runtime) -> None:
        self._calls = runtime.calls
        self._deps = runtime.deps

    async def CreateExchangeRate(
        self, request: pb.CreateExchangeRateRequest, _: Any
    ) -> pb.ExchangeRate:
        draft = convert.rate_draft(request.exchange_rate)

        async def work(conn: db.Conn, p: Principal) -> pb.ExchangeRate:
            rate = await service.create_exchange_rate(conn, p, draft=draft)
            return convert.rate_to_pb(rate, p.tenant_id)

        return await self._calls.idempotent(request, work)

    async def GetExchangeRate(self, request: pb.GetExchangeRateRequest, _: Any) -> pb.ExchangeRate:
        rate_id = pbconv.required_id(request.id, "exchange_rate", "id")

        async def work(conn: db.Conn, p: Principal) -> pb.ExchangeRate:
            rate = await service.get_exchange_rate(conn, p, rate_id=rate_id)
            return convert.rate_to_pb(rate, p.tenant_id)

        return await self._calls.run(work)

    async def ListExchangeRates(
        self, request: pb.ListExchangeRatesRequest, _: Any
    ) -> pb.ListExchangeRatesResponse:
        query = listing.query_from_request(request, EXCHANGE_RATES)

        async def work(conn: db.Conn, p: Principal) -> pb.ListExchangeRatesResponse:
            page = await service.list_exchange_rates(conn, p, query=query, deps=self._deps)
            return pbconv.page_to_pb(
                pb.ListExchangeRatesResponse, page, lambda r: convert.rate_to_pb(r, p.tenant_id)
            )

        return await self._calls.run(work)
