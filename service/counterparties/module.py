"""Counterparties: the tenant's contractors (CounterpartyService), matched by SIRET/SIREN."""

from __future__ import annotations

from invoicing.v1 import counterparties_pb2

from service.counterparties.models import counterparties
from service.counterparties.servicer import CounterpartyServicer
from service.edge.modules import Module, Service, policies
from service.kit import errors

SERVICE = counterparties_pb2.DESCRIPTOR.services_by_name["CounterpartyService"]


def _siret_taken(_: BaseException) -> errors.DomainError:
    return errors.already_exists(
        "a live counterparty already has this SIRET", "COUNTERPARTY_SIRET_TAKEN"
    )


MODULE = Module(
    name="counterparties",
    services=[
        Service(
            SERVICE,
            policies(SERVICE, read="counterparties.read", write="counterparties.write"),
            CounterpartyServicer,
        )
    ],
    tables=[counterparties],
    errors={"uq_counterparties_tenant_id_siret": _siret_taken},
)
