"""`python -m service.gateway --target host:port`: the REST gateway on its own, in front
of a remote gRPC server (TLS and client certificates optional), forwarding over gRPC."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

import grpc

from service.edge import tracing
from service.gateway.server import GatewaySettings, RunningGateway, standalone_app
from service.kit import config, logs


def _channel(args: argparse.Namespace) -> grpc.aio.Channel:
    if args.tls_ca is None:
        return grpc.aio.insecure_channel(args.target)
    key = args.tls_key.read_bytes() if args.tls_key else None
    cert = args.tls_cert.read_bytes() if args.tls_cert else None
    credentials = grpc.ssl_channel_credentials(args.tls_ca.read_bytes(), key, cert)
    return grpc.aio.secure_channel(args.target, credentials)


async def _serve(args: argparse.Namespace, settings: GatewaySettings) -> None:
    tracing.configure()
    channel = _channel(args)
    gateway = RunningGateway(standalone_app(channel, settings), settings)
    await gateway.start()
    print(f"invoicing gateway: http://{settings.host}:{gateway.port} -> {args.target}", flush=True)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    await gateway.stop()
    await channel.close()


def main() -> None:
    env = config.load()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", required=True, help="gRPC server, host:port")
    parser.add_argument("--host", default=env.gateway_host)
    parser.add_argument("--port", type=int, default=env.gateway_port)
    parser.add_argument("--tls-ca", type=Path, help="CA certificate of the gRPC server (TLS)")
    parser.add_argument("--tls-cert", type=Path, help="client certificate (mutual TLS)")
    parser.add_argument("--tls-key", type=Path, help="client key (mutual TLS)")
    args = parser.parse_args()
    logs.configure(env.log_level)
    settings = GatewaySettings.from_settings(env, host=args.host, port=args.port)
    try:
        asyncio.run(_serve(args, settings))
    except OSError as exc:
        raise SystemExit(f"invoicing gateway: {exc}") from exc


if __name__ == "__main__":
    main()
