#!/usr/bin/env python3
"""Writes the handmade seed corpora of the fuzz targets and the regression inputs they found.

    python3 fuzz/make_corpus.py          (from the repository root or from fuzz/)

- ipp_framing: small valid and invalid IPP requests, and the requests captured from real clients in
  fixtures/ipp/*.ipp (attribute section plus at most 64 bytes of document);
- pwg_decoder, urf_decoder: small valid rasters and hostile headers;
- render: documents of every format behind a selector byte (declared format and compression, see
  `convert::pipeline::fuzzing::declared`);
- pdf_raster: small PDFs;
- dnssd_txt: printer facts as 0xFF-separated fields (see `codec::dnssd_txt::fuzzing::check_txt`).

Seeds go to fuzz/corpus/TARGET/NAME (overwritten). libFuzzer adds files named by their SHA-1 next to
them while it runs; this script never removes those. Crashes are in fuzz/regressions/TARGET/ and are
kept forever; the ones written here are rebuilt byte for byte.
"""
import os
import struct
import zlib

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


# ---------------------------------------------------------------------------------------------
# Rasters (PWG 5102.4 and Apple raster), PDFs, images.

def pwg_header(width, height, color_space=18, bits_per_color=8, colors=1, dpi=72, bpl=None):
    h = bytearray(1796)
    h[0:9] = b"PwgRaster"
    def put(off, v):
        h[off:off + 4] = struct.pack(">I", v & 0xFFFFFFFF)
    put(276, dpi)
    put(280, dpi)
    put(352, width * 72 // max(dpi, 1))
    put(356, height * 72 // max(dpi, 1))
    put(372, width)
    put(376, height)
    put(384, bits_per_color)
    put(388, bits_per_color * colors)
    put(392, bpl if bpl is not None else (width * bits_per_color * colors + 7) // 8)
    put(400, color_space)
    put(420, colors)
    return bytes(h)


def urf_page_header(width, height, bpp=8, color_space=0, dpi=72):
    return (bytes([bpp, color_space, 1, 4, 0, 0, 0, 0]) + struct.pack(">IIII", 0, width, height, dpi)
            + bytes(8))


def urf_file(pages, page_count=None):
    count = len(pages) if page_count is None else page_count
    return b"UNIRAST\0" + struct.pack(">I", count) + b"".join(pages)


# Rows of a 4 x 2 gray page: row 0 repeated twice ("\x01"), a run of 4 pixels of 0x80.
GRAY_4X2_ROWS = b"\x01\x03\x80"
# A 3 x 2 sRGB page: line 0 literal pixels, line 1 a white fill.
RGB_3X2_ROWS = b"\x00\xfe\xff\x00\x00\x00\xff\x00\x00\x00\xff" + b"\x00\x80"

PWG_GRAY = b"RaS2" + pwg_header(4, 2) + GRAY_4X2_ROWS
PWG_RGB = b"RaS2" + pwg_header(3, 2, color_space=19, colors=3) + RGB_3X2_ROWS
PWG_BLACK1 = b"RaS2" + pwg_header(16, 1, color_space=3, bits_per_color=1) + b"\x00\x01\xaa"
URF_GRAY = urf_file([urf_page_header(4, 2) + GRAY_4X2_ROWS])
URF_RGB = urf_file([urf_page_header(3, 2, bpp=24, color_space=1) + RGB_3X2_ROWS,
                    urf_page_header(4, 2) + GRAY_4X2_ROWS])

# Issue 11 item 8: width and height near 2^32 made `line_bytes(width, bpp) * height` overflow in
# codec/pwg.rs check_size before the limits were looked at. 47 bytes.
URF_OVERFLOW = urf_file([urf_page_header(0xFFFFFFFF, 0xFFFFFFFF, bpp=64, color_space=6, dpi=300)
                         + b"\x00\x80\x00"])
PWG_OVERFLOW = b"RaS2" + pwg_header(0xFFFFFFFF, 0xFFFFFFFF, color_space=62, bits_per_color=16,
                                    colors=15, dpi=300, bpl=0) + b"\x00\x80"


def pdf(content=b"0 0 1 rg 10 10 50 50 re f", media=(200, 200), extra_objects=(), filter_=None):
    """A one-page PDF with a correct cross-reference table."""
    stream = content
    dict_extra = b""
    if filter_ == "flate":
        stream = zlib.compress(content)
        dict_extra = b" /Filter /FlateDecode"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents 4 0 R /Resources << >> >>"
        % media,
        b"<< /Length %d%s >>\nstream\n" % (len(stream), dict_extra) + stream + b"\nendstream",
    ] + list(extra_objects)
    out = b"%PDF-1.4\n"
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


def png(width=2, height=2, color_type=2):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    channels = {0: 1, 2: 3, 6: 4}[color_type]
    raw = b"".join(b"\x00" + bytes([(x * 90 + y * 40) & 0xFF for x in range(width * channels)])
                   for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# An 8 x 6 baseline JPEG (Ghostscript's jpeg device, ICC profile removed).
JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010101004800480000ffdb004300140e0f120f0d14121012171514181e32211e1c1c1e3d"
    "2c2e243249404c4b47404645505a736250556d5645466488656d777b8182814e608d978c7d96737e817cffdb004301"
    "1517171e1a1e3b21213b7c5346537c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c"
    "7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7cffc00011080006000803012200021101031101ffc4001f00000105010101"
    "01010100000000000000000102030405060708090a0bffc400b5100002010303020403050504040000017d01020300"
    "041105122131410613516107227114328191a1082342b1c11552d1f02433627282090a161718191a25262728292a34"
    "35363738393a434445464748494a535455565758595a636465666768696a737475767778797a838485868788898a92"
    "939495969798999aa2a3a4a5a6a7a8a9aab2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae1e2e3"
    "e4e5e6e7e8e9eaf1f2f3f4f5f6f7f8f9faffc4001f0100030101010101010101010000000000000102030405060708"
    "090a0bffc400b511000201020404030407050404000102770001020311040521310612415107617113223281081442"
    "91a1b1c109233352f0156272d10a162434e125f11718191a262728292a35363738393a434445464748494a53545556"
    "5758595a636465666768696a737475767778797a82838485868788898a92939495969798999aa2a3a4a5a6a7a8a9aa"
    "b2b3b4b5b6b7b8b9bac2c3c4c5c6c7c8c9cad2d3d4d5d6d7d8d9dae2e3e4e5e6e7e8e9eaf2f3f4f5f6f7f8f9faffda"
    "000c03010002110311003f00bfe11ff97bff00807fecd45145674be047663bfde25f2fc91fffd9")

# The selector byte of a render seed: low nibble the declared format, high nibble the compression
# (convert::pipeline::fuzzing::declared).
OCTET, PDF_, PWG_, URF_, JPEG_, PNG_ = range(6)
NONE, GZIP, DEFLATE = 0x00, 0x10, 0x20


def gzip(data):
    c = zlib.compressobj(6, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


TWO_PAGE_PDF = pdf().replace(b"/Kids [3 0 R] /Count 1", b"/Kids [3 0 R 3 0 R] /Count 2")

OTHER_SEEDS = {
    "pwg_decoder": {
        "gray-4x2": PWG_GRAY,
        "srgb-3x2": PWG_RGB,
        "black1-16x1": PWG_BLACK1,
        "two-pages": PWG_GRAY + pwg_header(3, 2, color_space=19, colors=3) + RGB_3X2_ROWS,
        "sync-only": b"RaS2",
        "bad-sync": b"RaS3" + pwg_header(4, 2),
        "truncated-rows": PWG_GRAY[:-1],
        "run-past-line": b"RaS2" + pwg_header(4, 2) + b"\x00\x05\x80",
        "huge-page": b"RaS2" + pwg_header(20000, 20000, color_space=6, bits_per_color=16, colors=4),
        "zero-width": b"RaS2" + pwg_header(0, 2),
    },
    "urf_decoder": {
        "gray-4x2": URF_GRAY,
        "srgb-then-gray": URF_RGB,
        "unknown-page-count": urf_file([urf_page_header(4, 2) + GRAY_4X2_ROWS], page_count=0),
        "fewer-pages-than-declared": urf_file([urf_page_header(4, 2) + GRAY_4X2_ROWS], page_count=3),
        "cielab": urf_file([urf_page_header(4, 2, bpp=24, color_space=2) + GRAY_4X2_ROWS]),
        "bad-magic": b"UNIRASX\0" + bytes(4),
        "line-repeat-past-page": urf_file([urf_page_header(4, 2) + b"\x05\x03\x00"]),
    },
    "render": {
        "pdf": bytes([PDF_]) + pdf(),
        "pdf-flate-content": bytes([PDF_]) + pdf(filter_="flate"),
        "pdf-two-pages": bytes([PDF_]) + TWO_PAGE_PDF,
        "pdf-gzip": bytes([PDF_ | GZIP]) + gzip(pdf()),
        "pdf-as-octet-stream-deflate": bytes([OCTET | DEFLATE]) + zlib.compress(pdf()),
        "pwg-gray": bytes([PWG_]) + PWG_GRAY,
        "pwg-srgb-gzip": bytes([PWG_ | GZIP]) + gzip(PWG_RGB),
        "urf": bytes([URF_]) + URF_RGB,
        "urf-as-octet-stream": bytes([OCTET]) + URF_GRAY,
        "jpeg": bytes([JPEG_]) + JPEG,
        "png-rgb": bytes([PNG_]) + png(),
        "png-gray-as-octet-stream": bytes([OCTET]) + png(3, 1, 0),
        "png-rgba-deflate": bytes([PNG_ | DEFLATE]) + zlib.compress(png(2, 2, 6)),
        "pdf-declared-as-pwg": bytes([PWG_]) + pdf(),
        "zeros-declared-as-pdf-gzip": bytes([PDF_ | GZIP]) + gzip(bytes(4096)),
        "text-declared-as-pdf": bytes([PDF_]) + b"hello, printer\n",
        "bad-gzip": bytes([PDF_ | GZIP]) + b"\x1f\x8b\x08\x00garbage",
        "urf-overflow": bytes([URF_]) + URF_OVERFLOW,
        "pwg-overflow": bytes([PWG_]) + PWG_OVERFLOW,
    },
    "pdf_raster": {
        "square": pdf(),
        "flate-content": pdf(content=b"0.5 g 0 0 100 100 re f 1 0 0 RG 5 w 0 0 m 200 200 l S", filter_="flate"),
        "two-pages": TWO_PAGE_PDF,
        "a4-text": pdf(content=b"BT /F1 24 Tf 72 720 Td (Hello) Tj ET", media=(595, 842),
                       extra_objects=()).replace(b"/Resources << >>",
                                                 b"/Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >>"),
        "no-eof": pdf()[:-6],
        "not-a-pdf": b"hello",
    },
    "dnssd_txt": {
        "typical": b"\x8b" + b"\xff".join([
            b"/ipp/print", b"printbridge appliance", b"http://pi.local:8631/", b"Room 1",
            b"application/pdf;image/urf;image/pwg-raster;image/jpeg", b"V1.4;W8;SRGB24;RS300",
            b"urn:uuid:6a1c2c77-0c5e-4f5b-9a0a-1d2f3e4c5b6a", b"document", b"Office printer",
            b"pi.example.org"]),
        "long-values": b"\x1f" + b"\xff".join([b"/" + b"p" * 300, "𝐀".encode() * 90, b"u" * 400,
                                               "北京".encode() * 60, b"x/y;" * 100]),
        "control-characters": b"\x00" + b"\xff".join([b"/a\tb", b"m\x00m", b"", b"\n\r", b";;,", b"",
                                                     b"URN:UUID:", b"", b" (2)", b"..--..a..-"]),
        "empty": b"",
    },
}

REGRESSIONS = {
    "urf_decoder": {"width-height-overflow-47-bytes.urf": URF_OVERFLOW},
    "pwg_decoder": {"width-height-overflow.pwg": PWG_OVERFLOW},
    "render": {
        "urf-width-height-overflow": bytes([URF_]) + URF_OVERFLOW,
        "pwg-width-height-overflow": bytes([PWG_]) + PWG_OVERFLOW,
    },
}


def write_all(base, table):
    for target, files in table.items():
        d = os.path.join(ROOT, "fuzz", base, target)
        os.makedirs(d, exist_ok=True)
        for name, data in files.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)


def main():
    assert len(URF_OVERFLOW) == 47
    write_all("corpus", OTHER_SEEDS)
    write_all("regressions", REGRESSIONS)
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
