"""Realistic sample customers (Swedish, Norwegian and French names) for the demo and tests.

Some can be built to fail on purpose: a CONFLICT (an id already created), a FAILED (the
service refuses the data) and an INVALID (refused before sending).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

FIRST_NAMES = (
    "Åsa", "Björn", "Örjan", "Märta", "Göran", "Linnéa", "Sören", "Åke", "Ingrid", "Håkan",
    "Kerstin", "Pär", "Maja", "Elin", "Anders", "Karin", "Sofia", "Lars", "Signe", "Tove",
    "Bjørn", "Sølvi", "Øystein", "Kåre", "Hélène", "Amélie", "François", "Zoé", "Noël", "Léa",
    "Emma", "Erik", "Cecilia", "Margareta", "May-Britt", "Ulla", "Jönsi", "Agnès",
)
LAST_NAMES = (
    "Öberg", "Sjöberg", "Söderberg", "Åström", "Lindén", "Ström", "Ekström", "Näslund",
    "Håkansson", "Jönsson", "Bäckström", "Andersson", "Pettersson", "Lundin", "Østergaard",
    "Sæther", "Løvik", "Dubois", "Lefèvre", "Gérard", "Nilsson", "Karlsson", "Ågren",
    "Patrik-Jansson", "Wikström", "Fröberg", "Hägg", "Rönnqvist",
)
STREETS = ("Storgatan", "Drottninggatan", "Kungsgatan", "Ågatan", "Västra Hamngatan",
           "Österlånggatan", "Karl Johans gate", "Rue de Rivoli", "Skolgatan", "Järnvägsgatan")
CITIES = (("Stockholm", "11122", "SE"), ("Göteborg", "41103", "SE"), ("Malmö", "21120", "SE"),
          ("Umeå", "90326", "SE"), ("Västerås", "72211", "SE"), ("Jönköping", "55318", "SE"),
          ("Oslo", "0150", "NO"), ("Tromsø", "9008", "NO"), ("Besançon", "25000", "FR"))
LANGUAGES = {"SE": "sv", "NO": "no", "FR": "fr"}

FIRST_CUSTOMER_ID = 50000001000


def make_customer(customer_id: int, rng: random.Random,
                  change_type: str = "CREATE") -> dict[str, Any]:
    """One customer entry in the API's format."""
    first = rng.choice(FIRST_NAMES)
    last = rng.choice(LAST_NAMES)
    city, postcode, country = rng.choice(CITIES)
    year = rng.randint(1940, 2005)
    month = rng.randint(1, 12)
    day = rng.randint(1, 28)
    return {
        "changeType": change_type,
        "type": "PERSON",
        "person": {
            "customerId": str(customer_id),
            "status": "UNACTIVATED",
            "firstName": first,
            "lastName": last,
            "languageCode": LANGUAGES[country],
            "birthday": f"{year:04d}-{month:02d}-{day:02d}",
            "addresses": [{
                "addressType": "HOME",
                "street": rng.choice(STREETS),
                "streetNumber": str(rng.randint(1, 120)),
                "postalCode": postcode,
                "city": city,
                "countryCode": country,
            }],
            "customerCards": [{
                "number": f"2000{customer_id}",
                "type": "LOYALTY",
                "scope": "GLOBAL",
            }],
        },
    }


def generate_customers(count: int, *, start_id: int = FIRST_CUSTOMER_ID, seed: int = 7,
                       conflicts: int = 0, refused: int = 0, invalid: int = 0
                       ) -> Iterator[dict[str, Any]]:
    """`count` customers; the last `conflicts + refused + invalid` of them are built to fail.

    conflicts: repeat the id of an earlier customer of this run (the service says CONFLICT);
    refused: data the service refuses (FAILED: no lastName, or a space in firstName);
    invalid: data the importer refuses before sending (no customerId, impossible birthday).
    """
    rng = random.Random(seed)
    good = count - conflicts - refused - invalid
    for i in range(count):
        customer = make_customer(start_id + i, rng)
        person = customer["person"]
        bad_index = i - good
        if bad_index < 0:
            pass
        elif bad_index < conflicts:
            person["customerId"] = str(start_id + bad_index % max(1, good))
        elif bad_index < conflicts + refused:
            if bad_index % 2:
                person["firstName"] = "Anna Karin"
            else:
                del person["lastName"]
        elif bad_index % 2:
            del person["customerId"]
        else:
            person["birthday"] = "1987-02-30"
        yield customer


def write_customer_file(path: Path, customers: Iterable[dict[str, Any]], *,
                        wrapper: str | None = "data", json_lines: bool = False) -> int:
    """Stream customers to a file (never all in memory); returns how many were written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with path.open("wb") as handle:
        if json_lines:
            for customer in customers:
                handle.write(orjson.dumps(customer) + b"\n")
                written += 1
            return written
        handle.write(b'{"' + wrapper.encode() + b'": [' if wrapper else b"[")
        for customer in customers:
            handle.write((b",\n" if written else b"\n") + orjson.dumps(customer))
            written += 1
        handle.write(b"\n]}\n" if wrapper else b"\n]\n")
    return written
