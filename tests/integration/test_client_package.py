"""The caller package (generated/client, `invoicing-api`) installs and talks to the
service with the oldest and the newest protobuf and grpcio releases it supports (a year
of releases), each in a fresh virtualenv."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from service import app
from tests.conftest import Tokens

ROOT = Path(__file__).resolve().parents[2]
RUNTIMES = {
    "oldest": ["protobuf==6.31.1", "grpcio==1.76.0"],
    "newest": ["protobuf==7.36.2", "grpcio==1.85.3"],
}
CALLER = """
import sys
import grpc
from google.rpc import error_details_pb2, status_pb2
from invoicing.v1 import (allocations_pb2_grpc, connections_pb2_grpc, invoices_pb2,
    invoices_pb2_grpc, provenance_pb2_grpc, records_pb2_grpc)
target, token = sys.argv[1], sys.argv[2]
md = (("authorization", "Bearer " + token),)
stub = invoices_pb2_grpc.InvoiceServiceStub(grpc.insecure_channel(target))
draft = invoices_pb2.Invoice(type=invoices_pb2.INVOICE_TYPE_CUSTOMER, currency="EUR",
    counterparty_id="0b9c4a52-8d0e-4a8e-9a51-2f7d4d2c1e11",
    line_items=[invoices_pb2.LineItem(description="x", quantity="2", unit_price="10.00")])
created = stub.CreateInvoice(invoices_pb2.CreateInvoiceRequest(invoice=draft), metadata=md)
assert created.total == "20.00", created.total
page = stub.ListInvoices(invoices_pb2.ListInvoicesRequest(limit=5), metadata=md)
assert [i.id for i in page.data] == [created.id]
try:
    stub.GetInvoice(invoices_pb2.GetInvoiceRequest(id="inv_x"), metadata=md)
except grpc.RpcError as err:
    raw = dict(err.trailing_metadata())["grpc-status-details-bin"]
    status = status_pb2.Status.FromString(raw)
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info) and info.domain == "invoicing.v1", status
else:
    raise AssertionError("no error")
import google.protobuf, importlib.metadata as m
print(google.protobuf.__version__, m.version("grpcio"), m.version("googleapis-common-protos"))
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "-w",
            str(out),
            str(ROOT / "generated" / "client"),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("invoicing_api-*.whl")
    return built


def _virtualenv(tmp_path: Path, wheel: Path, pins: list[str]) -> tuple[str, dict[str, str]]:
    """A fresh virtualenv with the wheel and `pins` installed; its python and env."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    install = subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            str(wheel),
            *pins,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    return python, env


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
async def test_the_caller_package_works_with_a_year_of_runtimes(
    runtime: str, wheel: Path, server: app.Running, tokens: Tokens, tmp_path: Path
) -> None:
    python, env = await asyncio.to_thread(_virtualenv, tmp_path, wheel, RUNTIMES[runtime])
    token = tokens.token(uuid.uuid4())
    called = await asyncio.to_thread(  # the server runs on this event loop: do not block it
        subprocess.run,
        [python, "-c", CALLER, f"127.0.0.1:{server.port}", token],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,  # not the repository: only the installed package is importable
    )
    assert called.returncode == 0, called.stderr[-3000:]
    print(runtime, called.stdout.strip())
    expected = RUNTIMES[runtime][0].split("==")[1]
    assert called.stdout.split()[0] == expected
