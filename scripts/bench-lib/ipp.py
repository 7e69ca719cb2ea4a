#!/usr/bin/env python3
"""Tiny IPP helper for scripts/bench (standard library only).

  ipp.py body PRINTER_URI [REQUEST_ID] > body.bin
      Write an IPP/2.0 Get-Printer-Attributes request (requested-attributes=all)
      for PRINTER_URI to stdout.

  ipp.py check RESPONSE_FILE
      Parse an IPP response body. Prints one line of key=value facts
      (version, status, request_id, bytes, attrs) and exits 0 only if the
      status code is successful-ok (0x0000) and the message parses to its
      end-of-attributes tag.

  ipp.py port
      Print a currently free TCP port on 127.0.0.1.
"""

import socket
import struct
import sys

# delimiter tags
TAG_OPERATION = 0x01
TAG_END = 0x03
# value tags
TAG_KEYWORD = 0x44
TAG_URI = 0x45
TAG_CHARSET = 0x47
TAG_NATURAL_LANGUAGE = 0x48

OP_GET_PRINTER_ATTRIBUTES = 0x000B


def attr(tag: int, name: str, value: str) -> bytes:
    n = name.encode("ascii")
    v = value.encode("utf-8")
    return struct.pack(">BH", tag, len(n)) + n + struct.pack(">H", len(v)) + v


def body(uri: str, request_id: int = 1) -> bytes:
    return b"".join(
        [
            struct.pack(">BBHI", 2, 0, OP_GET_PRINTER_ATTRIBUTES, request_id),
            bytes([TAG_OPERATION]),
            attr(TAG_CHARSET, "attributes-charset", "utf-8"),
            attr(TAG_NATURAL_LANGUAGE, "attributes-natural-language", "en"),
            attr(TAG_URI, "printer-uri", uri),
            attr(TAG_KEYWORD, "requested-attributes", "all"),
            bytes([TAG_END]),
        ]
    )


def check(data: bytes) -> int:
    facts = {"bytes": len(data)}
    if len(data) < 9:
        print(f"bytes={len(data)} error=too-short")
        return 1
    major, minor, status, request_id = struct.unpack(">BBHI", data[:8])
    facts.update(version=f"{major}.{minor}", status=f"0x{status:04x}", request_id=request_id)
    # Walk the attribute groups: count attributes (not additional values),
    # make sure the message is well formed up to the end tag.
    pos, attrs, groups, ended = 8, 0, 0, False
    try:
        while pos < len(data):
            tag = data[pos]
            pos += 1
            if tag == TAG_END:
                ended = True
                break
            if tag < 0x10:  # delimiter: start of a new group
                groups += 1
                continue
            (name_len,) = struct.unpack(">H", data[pos : pos + 2])
            pos += 2 + name_len
            (value_len,) = struct.unpack(">H", data[pos : pos + 2])
            pos += 2 + value_len
            if pos > len(data):
                raise ValueError("truncated")
            if name_len:
                attrs += 1
    except (struct.error, ValueError):
        ended = False
    facts.update(groups=groups, attrs=attrs, well_formed="yes" if ended else "no")
    print(" ".join(f"{k}={v}" for k, v in facts.items()))
    return 0 if status == 0 and ended else 1


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list) -> int:
    if len(argv) >= 2 and argv[1] == "body" and len(argv) in (3, 4):
        rid = int(argv[3]) if len(argv) == 4 else 1
        sys.stdout.buffer.write(body(argv[2], rid))
        return 0
    if len(argv) == 3 and argv[1] == "check":
        with open(argv[2], "rb") as f:
            return check(f.read())
    if len(argv) == 2 and argv[1] == "port":
        print(free_port())
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
