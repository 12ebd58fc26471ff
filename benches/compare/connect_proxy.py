#!/usr/bin/env python3
"""A local HTTPS proxy (HTTP CONNECT) for benches/compare/shopify.sh: tunnels every
`CONNECT <shop>.myshopify.com:443` to the simulated shop's TLS address, so a client that builds
`https://{shop}.myshopify.com/...` itself (tap-shopify, ShopifyAPI) reaches the simulator
through the standard HTTPS_PROXY setting, unmodified and without root (no /etc/hosts).
Other hosts are refused (403). Prints the port it listens on, then serves until killed.

    python3 connect_proxy.py 127.0.0.1:<sim tls port>
"""
import asyncio
import sys

TARGET_HOST, TARGET_PORT = sys.argv[1].rsplit(":", 1)


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def handle(reader, writer):
    head = await reader.readuntil(b"\r\n\r\n")
    method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
    host = target.rsplit(":", 1)[0]
    if method != "CONNECT" or not host.endswith(".myshopify.com"):
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()
        return
    up_reader, up_writer = await asyncio.open_connection(TARGET_HOST, int(TARGET_PORT))
    writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
    await writer.drain()
    await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
