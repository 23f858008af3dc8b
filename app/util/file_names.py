"""File names that are valid on Windows and macOS and keep letters such as Å Ä Ö."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_FORBIDDEN = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"COM{i}" for i in range(1, 10)} | {f"LPT{i}" for i in range(1, 10)}
    | {"COM¹", "COM²", "COM³", "LPT¹", "LPT²", "LPT³"}
)
MAX_COMPONENT_BYTES = 120  # well under the 255-byte limit, leaving room for the folder path


def safe_name_part(text: str, *, fallback: str = "unknown", max_bytes: int = 60) -> str:
    """One piece of a file name: forbidden characters and path separators become `_`.

    NFC normalisation keeps Ö as one character on every system (macOS would otherwise
    hand back a decomposed O + diaeresis). Dots at the ends are dropped, so `..` can never
    climb out of the folder.
    """
    text = unicodedata.normalize("NFC", str(text))
    text = _FORBIDDEN.sub("_", text)
    text = re.sub(r"\s+", "", text)
    text = text.strip(". ")
    text = _truncate_utf8(text, max_bytes).strip(". ")
    if not text or set(text) <= {"_"}:
        return fallback
    return text


def safe_file_name(stem: str, suffix: str = "") -> str:
    """A whole file name: a safe stem, never a reserved device name, bounded in length."""
    stem = _FORBIDDEN.sub("_", unicodedata.normalize("NFC", stem)).strip(". ") or "file"
    stem = _truncate_utf8(stem, MAX_COMPONENT_BYTES - len(suffix.encode())).rstrip(". ")
    if stem.split(".")[0].upper() in _RESERVED:
        stem = f"_{stem}"
    return f"{stem}{suffix}"


def _truncate_utf8(text: str, max_bytes: int) -> str:
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return text
    return encoded[:max_bytes].decode("utf-8", "ignore")


def single_failure_file_name(customer_id: str, username: str, *, kind: str = "customers",
                             fallback_key: str = "") -> str:
    """`customer_<ID>_<USERNAME>.json`, as seed 002 lays them out, one name per customer.

    Where the id alone would not keep two customers apart, a short fingerprint of the exact
    id follows it (`customer_<ID>~1a2b3c4d_...`): when making it safe changed the id
    (`X/1234`, `X:1234` and `X_1234` all become `X_1234`), when it has lower-case letters
    (`abc` and `ABC` are one file on Windows and macOS), and when there is no id (then
    `fallback_key`, such as file and record, tells the customers apart).
    """
    id_part = safe_name_part(customer_id, fallback="no-id")
    if not customer_id or id_part != customer_id or customer_id != customer_id.upper():
        identity = f"{kind}\0{customer_id}" if customer_id else f"{kind}\0\0{fallback_key}"
        id_part += "~" + hashlib.sha1(identity.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    stem = f"customer_{id_part}_{safe_name_part(username, fallback='unnamed')}"
    return safe_file_name(stem, ".json")
