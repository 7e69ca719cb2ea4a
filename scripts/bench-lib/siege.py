#!/usr/bin/env python3
"""Normal-client latency under a connection siege, for scripts/bench (standard library only).

  siege.py PORT PRINTER_URI [IDLE] [SLOW] [REQUESTS]

Holds IDLE silent connections and SLOW slowloris connections (a header line
every half second, never the end of the headers) to 127.0.0.1:PORT, 50 from
each loopback address 127.0.0.10, 127.0.0.11, ... and reopens whatever the
server closes, as an attacker would. Meanwhile a normal client on 127.0.0.2
sends REQUESTS Get-Printer-Attributes, one per new connection, and times
each until the whole response is read (10 s at most; longer counts as failed,
and as 10 s in the percentiles), for two minutes at most. Prints one line:

  BENCH_SIEGE held=N answered=N failed=N p50_us=N p99_us=N reopened=N
"""

import os
import resource
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ipp  # noqa: E402

PER_ADDRESS = 50


def connect(src: str, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.bind((src, 0))
        s.connect(("127.0.0.1", port))
    except OSError:
        s.close()
        raise
    return s


def address(i: int) -> str:
    return f"127.0.0.{10 + i // PER_ADDRESS}"


def http_request(port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/ipp\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    return head + body


def normal_request(port: int, path: str, body: bytes) -> bool:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.bind(("127.0.0.2", 0))
        s.connect(("127.0.0.1", port))
        s.sendall(http_request(port, path, body))
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        return head.startswith(b"HTTP/1.1 200") and len(rest) >= 4 and rest[2:4] == b"\x00\x00"
    except OSError:
        return False
    finally:
        s.close()


def main() -> int:
    port = int(sys.argv[1])
    uri = sys.argv[2]
    idle = int(sys.argv[3]) if len(sys.argv) > 3 else 2000
    slow = int(sys.argv[4]) if len(sys.argv) > 4 else 500
    requests = int(sys.argv[5]) if len(sys.argv) > 5 else 200
    path = "/" + uri.split("/", 3)[3]
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < idle + slow + 256:
        print(f"siege.py: the open-files limit ({hard}) is too low for {idle + slow} sockets", file=sys.stderr)
        return 2

    def open_one(i: int) -> socket.socket:
        s = connect(address(i), port)
        if i >= idle:
            s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n".encode())
        s.setblocking(False)
        return s

    def try_open(i: int):
        try:
            return open_one(i)
        except OSError:
            return None

    # A server that stops accepting leaves some connects unanswered: those are tried again.
    # (At most 30 s for the first round; the keeper goes on with the rest.)
    opening_ends = time.monotonic() + 30
    socks = [try_open(i) if time.monotonic() < opening_ends else None for i in range(idle + slow)]
    stop = threading.Event()
    reopened = [0]

    def keep() -> None:
        while not stop.is_set():
            for i, s in enumerate(socks):
                if stop.is_set():
                    return
                gone = s is None
                if s is not None:
                    try:
                        if s.recv(64) == b"":
                            gone = True
                    except BlockingIOError:
                        pass
                    except OSError:
                        gone = True
                if s is not None and not gone and i >= idle:
                    try:
                        s.send(b"X-Slow: a\r\n")
                    except BlockingIOError:
                        pass
                    except OSError:
                        gone = True
                if gone:
                    if s is not None:
                        s.close()
                        reopened[0] += 1
                    socks[i] = try_open(i)
            time.sleep(0.5)

    keeper = threading.Thread(target=keep, daemon=True)
    keeper.start()
    time.sleep(1)
    body = ipp.body(uri)
    times = []
    failed = 0
    budget = time.monotonic() + 120
    for _ in range(requests):
        if time.monotonic() > budget:
            break
        t0 = time.monotonic()
        ok = normal_request(port, path, body)
        dt = time.monotonic() - t0
        if ok:
            times.append(dt)
        else:
            # A request that got no answer counts as the full time-out in the percentiles.
            failed += 1
            times.append(max(dt, 10.0))
        time.sleep(0.02)
    stop.set()
    keeper.join(timeout=15)
    for s in socks:
        if s is not None:
            s.close()
    times.sort()

    def pct(p: float) -> int:
        if not times:
            return 0
        return int(1e6 * times[min(len(times) - 1, int(p * len(times)))])

    print(
        f"BENCH_SIEGE held={sum(s is not None for s in socks)} answered={len(times) - failed} failed={failed} "
        f"p50_us={pct(0.50)} p99_us={pct(0.99)} reopened={reopened[0]}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
