#!/usr/bin/env python3
"""Writes the seed corpus of the `ipp_framing` fuzz target: small valid and invalid IPP requests.

    python3 fuzz/make_corpus.py          (from the repository root or from fuzz/)

Handmade seeds go to fuzz/corpus/ipp_framing/NAME (overwritten); requests captured from real clients
in fixtures/ipp/*.ipp are copied in too (attribute section plus at most 64 bytes of document).
libFuzzer adds files named by their SHA-1 next to them while it runs; this script never removes those.
"""
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "fuzz", "corpus", "ipp_framing")
FIXTURES = os.path.join(ROOT, "fixtures", "ipp")
URI = b"ipp://localhost:8631/ipp/print"

OP, JOB, END, PRINTER, UNSUPPORTED, SUBSCRIPTION, DOCUMENT = 1, 2, 3, 4, 5, 6, 9
UNSUPPORTED_VALUE, UNKNOWN, NO_VALUE, DELETE_ATTRIBUTE = 0x10, 0x12, 0x13, 0x16
INTEGER, BOOLEAN, ENUM = 0x21, 0x22, 0x23
OCTET, DATETIME, RESOLUTION, RANGE, BEGCOL, TEXTLANG, NAMELANG, ENDCOL = 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37
TEXT, NAME, KEYWORD, URITAG, SCHEME, CHARSET, NATLANG, MIME, MEMBER = 0x41, 0x42, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4A


def header(op, rid=1, version=(2, 0)):
    return bytes(version) + struct.pack(">HI", op, rid)


def attr(tag, name, value=b""):
    name = name.encode() if isinstance(name, str) else name
    value = value.encode() if isinstance(value, str) else value
    return bytes([tag]) + struct.pack(">H", len(name)) + name + struct.pack(">H", len(value)) + value


def i32(n):
    return struct.pack(">i", n)


def lang(tag, name, language, text):
    inner = struct.pack(">H", len(language)) + language + struct.pack(">H", len(text)) + text
    return attr(tag, name, inner)


def prelude(op, rid=1, version=(2, 0)):
    return (header(op, rid, version) + bytes([OP]) + attr(CHARSET, "attributes-charset", "utf-8")
            + attr(NATLANG, "attributes-natural-language", "en") + attr(URITAG, "printer-uri", URI))


def collection(name, members):
    """members: list of (member-name, [encoded values without names])."""
    out = attr(BEGCOL, name)
    for member, values in members:
        out += attr(MEMBER, "", member)
        out += b"".join(values)
    return out + attr(ENDCOL, "")


def value(tag, data=b""):
    return attr(tag, "", data)


def media_col(name="media-col"):
    size = collection("", [("x-dimension", [value(INTEGER, i32(21000))]),
                           ("y-dimension", [value(INTEGER, i32(29700))])])
    return collection(name, [
        ("media-size", [size]),
        ("media-type", [value(KEYWORD, "stationery")]),
        ("media-source", [value(KEYWORD, "auto")]),
        ("media-top-margin", [value(INTEGER, i32(0))]),
    ])


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"

SEEDS = {
    "get-printer-attributes": prelude(0x000B) + bytes([END]),
    "get-printer-attributes-requested": prelude(0x000B, 2)
        + attr(NAME, "requesting-user-name", "alice")
        + attr(KEYWORD, "requested-attributes", "all") + value(KEYWORD, "media-col-database")
        + attr(MIME, "document-format", "application/pdf") + bytes([END]),
    "get-printer-attributes-1.1": prelude(0x000B, 3, (1, 1)) + bytes([END]),
    "print-job-pdf": prelude(0x0002, 4) + attr(NAME, "requesting-user-name", "alice")
        + attr(NAME, "job-name", "report.pdf") + attr(MIME, "document-format", "application/pdf")
        + bytes([END]) + PDF,
    "print-job-template": prelude(0x0002, 5) + attr(NAME, "requesting-user-name", "bob")
        + attr(MIME, "document-format", "image/pwg-raster") + bytes([JOB])
        + attr(INTEGER, "copies", i32(2)) + attr(KEYWORD, "sides", "two-sided-long-edge")
        + attr(ENUM, "print-quality", i32(5)) + attr(ENUM, "finishings", i32(3)) + value(ENUM, i32(4))
        + attr(RESOLUTION, "printer-resolution", i32(600) + i32(600) + b"\x03")
        + attr(RANGE, "page-ranges", i32(1) + i32(3)) + value(RANGE, i32(5) + i32(5))
        + media_col() + bytes([END]) + b"RaS2",
    "create-job-with-language": prelude(0x0005, 6)
        + lang(NAMELANG, "requesting-user-name", b"de", b"J\xc3\xbcrgen")
        + lang(NAMELANG, "job-name", b"en-us", b"quarterly")
        + bytes([JOB]) + lang(TEXTLANG, "job-message-to-operator", b"fr", b"merci") + bytes([END]),
    "send-document-last": prelude(0x0006, 7) + attr(INTEGER, "job-id", i32(1))
        + attr(BOOLEAN, "last-document", b"\x01") + attr(MIME, "document-format", "application/octet-stream")
        + attr(KEYWORD, "compression", "gzip") + bytes([END]) + b"\x1f\x8b\x08\x00",
    "get-jobs": prelude(0x000A, 8) + attr(KEYWORD, "which-jobs", "completed") + attr(INTEGER, "limit", i32(10))
        + attr(BOOLEAN, "my-jobs", b"\x00") + attr(KEYWORD, "requested-attributes", "job-id")
        + value(KEYWORD, "job-state") + value(KEYWORD, "job-state-reasons") + bytes([END]),
    "cancel-job-uri": header(0x0008, 9) + bytes([OP]) + attr(CHARSET, "attributes-charset", "utf-8")
        + attr(NATLANG, "attributes-natural-language", "en")
        + attr(URITAG, "job-uri", URI + b"/jobs/1") + bytes([END]),
    "create-subscriptions": prelude(0x0016, 10) + bytes([SUBSCRIPTION])
        + attr(URITAG, "notify-recipient-uri", "ippget:")
        + attr(KEYWORD, "notify-pull-method", "ippget")
        + attr(KEYWORD, "notify-events", "job-completed") + value(KEYWORD, "printer-state-changed")
        + attr(INTEGER, "notify-lease-duration", i32(3600)) + attr(OCTET, "notify-user-data", b"\x00\xffdata")
        + bytes([END]),
    "out-of-band-and-other-types": prelude(0x0013, 11) + bytes([PRINTER])
        + attr(NO_VALUE, "printer-info") + attr(UNKNOWN, "printer-location", b"ignored")
        + attr(DELETE_ATTRIBUTE, "printer-geo-location") + attr(UNSUPPORTED_VALUE, "x-oob")
        + attr(DATETIME, "printer-current-time", b"\x07\xea\x0b\x16\x03\x25\x00\x00+\x00\x00")
        + attr(SCHEME, "uri-scheme", "ipps") + attr(0x20, "x-unknown-type", b"\x01\x02")
        + attr(0x43, "x-reserved-string", "r") + attr(TEXT, "printer-organization", "Acme")
        + bytes([DOCUMENT, END]),
    "media-col-database-1setOf": prelude(0x0013, 12) + bytes([PRINTER])
        + media_col("media-col-database")
        + value(BEGCOL) + attr(MEMBER, "", "media-size")
        + collection("", [("x-dimension", [value(INTEGER, i32(10000))]),
                          ("y-dimension", [value(RANGE, i32(10000) + i32(20000))])])
        + attr(ENDCOL, "") + bytes([END]),
    "empty-groups": header(0x000B, 13) + bytes([OP, JOB, PRINTER, UNSUPPORTED, END]),
    # Invalid ones: each must be rejected without a panic.
    "bad-text-with-language": prelude(0x000B, 20) + attr(TEXTLANG, "job-name", b"\x00\x02en\x00\xc8abc") + bytes([END]),
    "bad-name-with-language": prelude(0x000B, 21)
        + attr(NAMELANG, "requesting-user-name", b"\xff\xf0en\x00\x01x") + bytes([END]),
    "nested-collections-too-deep": prelude(0x0002, 22) + bytes([JOB]) + attr(BEGCOL, "media-col")
        + (attr(MEMBER, "", "m") + value(BEGCOL)) * 9 + attr(ENDCOL, "") * 10 + bytes([END]),
    "end-collection-at-top-level": prelude(0x000B, 23) + attr(ENDCOL, "") + bytes([END]),
    "member-name-at-top-level": prelude(0x000B, 24) + attr(MEMBER, "", "media-type") + bytes([END]),
    "truncated-header": header(0x000B, 25)[:5],
    "value-length-past-end": header(0x000B, 26) + bytes([OP, CHARSET]) + b"\x00\x12attributes-charset\x10\x00utf-8\x03",
    "no-end-tag": prelude(0x000B, 27),
    "extension-tag": prelude(0x000B, 28) + attr(0x7F, "x-ext", b"\x00\x00\x00\x41\x01\x02") + bytes([END]),
    "bad-boolean-and-integer": prelude(0x000A, 29) + attr(BOOLEAN, "my-jobs", b"\x00\x01")
        + attr(INTEGER, "limit", b"\x00\x00\x01") + bytes([END]),
    "invalid-utf8-name": prelude(0x000B, 30) + attr(NAME, "requesting-user-name", b"a\xff\xfeb")
        + attr(KEYWORD, b"x\xc3\x28", "v") + bytes([END]),
    "orphan-additional-value": header(0x000B, 31) + bytes([OP]) + value(KEYWORD, "x") + bytes([END]),
    "unbalanced-collection-at-end": prelude(0x0002, 32) + bytes([JOB]) + attr(BEGCOL, "media-col")
        + attr(MEMBER, "", "media-type") + value(KEYWORD, "plain") + bytes([END]),
}


def attribute_section_end(data):
    """Where the attribute section of `data` ends (after the end tag), or len(data)."""
    pos = 8
    while pos < len(data):
        t = data[pos]
        if t == END:
            return pos + 1
        if t < 0x10:
            pos += 1
            continue
        if pos + 3 > len(data):
            break
        nl = struct.unpack(">H", data[pos + 1:pos + 3])[0]
        at = pos + 3 + nl
        if at + 2 > len(data):
            break
        vl = struct.unpack(">H", data[at:at + 2])[0]
        pos = at + 2 + vl
    return len(data)


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    captured = 0
    if os.path.isdir(FIXTURES):
        for name in sorted(os.listdir(FIXTURES)):
            if not name.endswith(".ipp"):
                continue
            with open(os.path.join(FIXTURES, name), "rb") as f:
                data = f.read()
            cut = min(len(data), attribute_section_end(data) + 64)
            with open(os.path.join(OUT, "fixture-" + name[:-4]), "wb") as f:
                f.write(data[:cut])
            captured += 1
    print(f"wrote {len(SEEDS)} handmade and {captured} captured seeds to {OUT}")


if __name__ == "__main__":
    main()
