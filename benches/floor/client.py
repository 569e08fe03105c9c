"""Drives GET requests at a fixed rate over keep-alive connections; prints how many were
answered. Its own CPU does not matter: benches/floor.sh reads the server's from /proc.
    python3 benches/floor/client.py PORT CONNECTIONS RATE SECONDS [PATH]"""
import asyncio
import sys
import time

PORT, CONNS, RATE, SECS = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
PATH = sys.argv[5] if len(sys.argv) > 5 else "/healthz"
REQUEST = f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
answered = 0


async def connection(i):
    global answered
    reader, writer = await asyncio.open_connection("127.0.0.1", PORT)
    interval = CONNS / RATE
    due = time.monotonic() + interval * i / CONNS
    end = time.monotonic() + SECS
    while time.monotonic() < end:
        now = time.monotonic()
        if due > now:
            await asyncio.sleep(due - now)
        due += interval
        writer.write(REQUEST)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        await reader.readexactly(length)
        answered += 1
    writer.close()


async def main():
    await asyncio.gather(*[connection(i) for i in range(CONNS)])
    print(answered)


asyncio.run(main())
