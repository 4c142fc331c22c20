"""Which format a file is in, and which text encoding, from its first bytes."""

from __future__ import annotations

import codecs
import re

import charset_normalizer

from finance.imports.statement import InvalidFile
from finance.models import ImportFormat

SAMPLE_BYTES = 64 * 1024

_BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_EXTENSIONS = {
    "ofx": ImportFormat.OFX,
    "qfx": ImportFormat.OFX,
    "qbo": ImportFormat.OFX,
    "qif": ImportFormat.QIF,
    "sta": ImportFormat.MT940,
    "mt940": ImportFormat.MT940,
    "940": ImportFormat.MT940,
    "beancount": ImportFormat.BEANCOUNT,
    "bean": ImportFormat.BEANCOUNT,
    "csv": ImportFormat.CSV,
    "tsv": ImportFormat.CSV,
    "txt": None,
    "xml": None,
}
_BEANCOUNT_DIRECTIVE = re.compile(
    rb"^\d{4}-\d{2}-\d{2}\s+(open|close|commodity|price|balance|pad|note|txn|[*!])\s",
    re.MULTILINE,
)


def detect_encoding(sample: bytes, given: str | None = None) -> str:
    """The encoding to read a file with: the one given, a BOM's, UTF-8, else a guess.

    Only a sample is checked; a decoding error further on is reported with its line.
    """
    if given:
        try:
            codecs.lookup(given)
        except LookupError as exc:
            raise InvalidFile(f"unknown encoding {given!r}") from exc
        return given
    for bom, name in _BOMS:
        if sample.startswith(bom):
            return name
    if b"\x00" in sample:
        raise InvalidFile("this is a binary file, not a text statement")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    best = charset_normalizer.from_bytes(sample).best()
    if best is None:
        raise InvalidFile("the file is not text in any encoding this service recognises")
    return best.encoding


def decode(data: bytes, given: str | None = None) -> str:
    """The whole file as text, or a 422 that names the first byte that does not decode."""
    encoding = detect_encoding(data[:SAMPLE_BYTES], given)
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InvalidFile(
            f"byte {exc.start} is not valid {encoding}; give the file's encoding",
            position=f"line {line}",
        ) from exc


def detect_format(sample: bytes, filename: str | None) -> ImportFormat:
    """The format from the content (a header or a root element), else from the extension."""
    head = sample.lstrip(b"\xef\xbb\xbf \t\r\n")
    upper = head[:4096].upper()
    if upper.startswith(b"OFXHEADER") or b"<OFX>" in upper or b"<?OFX" in upper:
        return ImportFormat.OFX
    if head.startswith(b"<") and b"CAMT.053" in upper:
        return ImportFormat.CAMT053
    if upper.startswith((b"!TYPE:", b"!ACCOUNT", b"!OPTION", b"!CLEAR")):
        return ImportFormat.QIF
    if (head.startswith((b":20:", b"{1:")) or b"\n:20:" in head[:2048]) and b":61:" in head:
        return ImportFormat.MT940
    extension = (filename or "").rsplit(".", 1)[-1].lower() if "." in (filename or "") else ""
    by_extension = _EXTENSIONS.get(extension)
    if by_extension is not None:
        return by_extension
    if _BEANCOUNT_DIRECTIVE.search(head) or head.startswith((b"option ", b";")):
        return ImportFormat.BEANCOUNT
    if head.startswith(b"<"):
        raise InvalidFile("an XML file that is neither OFX nor a camt.053 statement")
    return ImportFormat.CSV
