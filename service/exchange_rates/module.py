"""Exchange rates (AllocationService's rate rpcs)."""

from __future__ import annotations

from invoicing.v1 import allocations_pb2

from service.edge.modules import Module, Service, policies
from service.exchange_rates.models import exchange_rates
from service.exchange_rates.servicer import ExchangeRateServicer

SERVICE = allocations_pb2.DESCRIPTOR.services_by_name["AllocationService"]
RPCS = ("CreateExchangeRate", "GetExchangeRate", "ListExchangeRates")

MODULE = Module(
    name="exchange_rates",
    services=[
        Service(
            SERVICE,
            policies(SERVICE, read="allocations.read", write="allocations.write", only=RPCS),
            ExchangeRateServicer,
        )
    ],
    tables=[exchange_rates],
)
