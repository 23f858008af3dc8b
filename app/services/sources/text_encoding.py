"""Which text encoding a CSV file was saved in, decided so that no name turns into mojibake.

The order is fixed and deliberate:

1. a byte-order mark (UTF-8, UTF-16, UTF-32) decides at once;
2. UTF-16 without a mark is recognised by its zero bytes (a header is ASCII text);
3. otherwise the whole file is checked as strict UTF-8 (a C-speed pass over the bytes);
4. what is not UTF-8 is Windows-1252, the "ANSI" of Swedish, Norwegian, Danish, French and
   English Windows.

Statistical detectors guess wrong on exactly these files: charset-normalizer takes Swedish
Windows-1252 with CRLF line ends for Windows-1250 (Å becomes Ĺ). A file that mixes both
(UTF-8 names pasted into an ANSI file) is read as UTF-8, with Windows-1252 only for the bytes
that are not UTF-8, so neither half comes out garbled.
"""

from __future__ import annotations

import codecs
import io
from dataclasses import dataclass
from pathlib import Path
from typing import IO

#: Decode errors handler: a byte that is not UTF-8 is read as Windows-1252.
WINDOWS_1252_FALLBACK = "bulk-import-windows-1252"

_CHECK_CHUNK_BYTES = 1 << 18  # 256 kB: memory stays small, the C decoder fast

# Windows-1252 leaves five bytes undefined; Windows itself maps them to the C1 controls
# U+0081 ... U+009D, and so do we, so decoding never fails.
_WINDOWS_1252 = tuple(
    bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in range(256))

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"),  # before UTF-16 LE: it starts the same way
    (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8 with BOM"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"),
    (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)
# The codecs named above skip their own mark. A stray Windows-1252 byte in a UTF-8 file with
# a mark is read as Windows-1252; broken UTF-16/32 is an error the reader reports.
_ERRORS_AFTER_BOM = {"utf-8-sig": WINDOWS_1252_FALLBACK}


def _windows_1252_for_bad_bytes(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeDecodeError):
        raise error
    bad = error.object[error.start:error.end]
    return "".join(_WINDOWS_1252[b] for b in bad), error.end


codecs.register_error(WINDOWS_1252_FALLBACK, _windows_1252_for_bad_bytes)


@dataclass(frozen=True, slots=True)
class TextEncoding:
    """How to decode a file: the Python codec, its error handler, and a name for people."""

    codec: str
    errors: str
    label: str

    def wrap(self, raw: IO[bytes]) -> IO[str]:
        """A text stream over the binary `raw` (CSV-ready: line ends are left alone)."""
        return io.TextIOWrapper(raw, encoding=self.codec, errors=self.errors, newline="")


UTF_8 = TextEncoding("utf-8", "strict", "UTF-8")
WINDOWS_1252 = TextEncoding("cp1252", WINDOWS_1252_FALLBACK, "Windows-1252")
UTF_8_WITH_WINDOWS_1252 = TextEncoding(
    "utf-8", WINDOWS_1252_FALLBACK, "UTF-8 mixed with Windows-1252")


def _utf16_without_bom(head: bytes) -> TextEncoding | None:
    """UTF-16 without a byte-order mark: ASCII text has a zero in every other byte."""
    sample = head[:512]
    if len(sample) < 4:
        return None
    even_zeros = sample[0::2].count(0)
    odd_zeros = sample[1::2].count(0)
    half = len(sample) // 2
    if odd_zeros > half * 0.6 and even_zeros < half * 0.1:
        return TextEncoding("utf-16-le", "strict", "UTF-16 LE")
    if even_zeros > half * 0.6 and odd_zeros < half * 0.1:
        return TextEncoding("utf-16-be", "strict", "UTF-16 BE")
    return None


def detect_encoding(path: Path) -> TextEncoding:
    """The encoding of the text file at `path` (read once, never held whole in memory)."""
    with Path(path).open("rb") as handle:
        head = handle.read(4)
        for bom, codec, label in _BOMS:
            if head.startswith(bom):
                return TextEncoding(codec, _ERRORS_AFTER_BOM.get(codec, "strict"), label)
        handle.seek(0)
        first = handle.read(_CHECK_CHUNK_BYTES)
        utf16 = _utf16_without_bom(first)
        if utf16 is not None:
            return utf16
        # strict UTF-8 over the whole file: the C decoder stops at the first byte that
        # is not UTF-8 (a regular expression over the text would cost ten times more)
        strict = codecs.getincrementaldecoder("utf-8")("strict")
        chunk = first
        try:
            while chunk:
                strict.decode(chunk)
                chunk = handle.read(_CHECK_CHUNK_BYTES)
            strict.decode(b"", final=True)
            return UTF_8
        except UnicodeDecodeError:
            pass
        # not UTF-8: does it hold real UTF-8 letters as well (a mixed file)?
        handle.seek(0)
        lenient = codecs.getincrementaldecoder("utf-8")("ignore")
        while chunk := handle.read(_CHECK_CHUNK_BYTES):
            if not lenient.decode(chunk).isascii():
                return UTF_8_WITH_WINDOWS_1252
    return WINDOWS_1252
