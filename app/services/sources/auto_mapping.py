"""A first mapping guessed from a spreadsheet's header, in English, Swedish, Norwegian, Danish.

Only obvious headers are mapped; every other column is returned as unmapped, so the user
sees it and decides. Headers are compared without case, spaces, dashes, dots, underscores
and accents ("Födelsedatum", "fodelsedatum" and "FÖDELSE-DATUM" are the same header).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from app.services.sources.mapping import DEFAULT_NULL_VALUES, Mapping


class Role(StrEnum):
    """What a column holds, as far as the importer's checks are concerned."""

    CUSTOMER_ID = "customer id"
    FIRST_NAME = "first name"
    LAST_NAME = "last name"
    BIRTHDAY = "birthday"
    EMAIL = "e-mail"
    PHONE = "phone"
    CARD_NUMBER = "card number"
    PERSONAL_NUMBER = "personal number"
    STREET = "street"
    STREET_NUMBER = "street number"
    POSTAL_CODE = "postal code"
    CITY = "city"
    COUNTRY = "country"
    LANGUAGE = "language"


#: Where each recognised column goes in the API entry (docs/api.md).
TARGET_OF_ROLE: dict[Role, str] = {
    Role.CUSTOMER_ID: "person.customerId",
    Role.FIRST_NAME: "person.firstName",
    Role.LAST_NAME: "person.lastName",
    Role.BIRTHDAY: "person.birthday",
    Role.EMAIL: "person.email",
    Role.PHONE: "person.phone",
    Role.CARD_NUMBER: "person.customerCards[0].number",
    Role.PERSONAL_NUMBER: "person.personalNumber",
    Role.STREET: "person.addresses[0].street",
    Role.STREET_NUMBER: "person.addresses[0].streetNumber",
    Role.POSTAL_CODE: "person.addresses[0].postalCode",
    Role.CITY: "person.addresses[0].city",
    Role.COUNTRY: "person.addresses[0].countryCode",
    Role.LANGUAGE: "person.languageCode",
}

# Headers as `header_key` leaves them: lower case, ASCII letters and digits only.
_HEADERS: dict[Role, tuple[str, ...]] = {
    Role.CUSTOMER_ID: (
        "customerid", "customerno", "customernumber", "custid", "kundnummer", "kundnr",
        "kundid", "kundeid", "kundenummer", "kundenr"),
    Role.FIRST_NAME: (
        "firstname", "givenname", "forename", "fornamn", "fornavn", "tilltalsnamn"),
    Role.LAST_NAME: (
        "lastname", "surname", "familyname", "efternamn", "etternavn", "efternavn"),
    Role.BIRTHDAY: (
        "birthday", "birthdate", "dateofbirth", "dob", "fodelsedatum", "fodelsedag",
        "fodselsdato", "fodselsdag"),
    Role.EMAIL: (
        "email", "emailaddress", "mail", "epost", "epostadress", "epostadresse",
        "emailadresse", "mailadress", "mailadresse"),
    Role.PHONE: (
        "phone", "phonenumber", "telephone", "mobile", "mobilephone", "mobilenumber",
        "cellphone", "telefon", "telefonnummer", "telefonnr", "mobil", "mobilnummer",
        "mobilnr", "mobiltelefon"),
    Role.CARD_NUMBER: (
        "cardnumber", "cardno", "loyaltycard", "loyaltycardnumber", "membercard",
        "kortnummer", "kortnr", "kundkort", "medlemskort", "kundekort"),
    # Swedish personal numbers only: their check (row_validation.py) would refuse a valid
    # Norwegian fødselsnummer (11 digits) or Danish CPR number, so those stay unmapped
    Role.PERSONAL_NUMBER: (
        "ssn", "personnummer", "personalnumber", "personalidentitynumber", "personnr",
        "personalid"),
    Role.STREET: (
        "street", "streetname", "address", "streetaddress", "address1", "addressline1",
        "gata", "gatuadress", "adress", "gate", "gateadresse", "gade", "adresse",
        "vejnavn"),
    Role.STREET_NUMBER: (
        "streetnumber", "streetno", "housenumber", "houseno", "gatunummer", "gatunr",
        "husnummer", "husnr"),
    Role.POSTAL_CODE: (
        "zip", "zipcode", "postalcode", "postcode", "postnummer", "postnr"),
    Role.CITY: (
        "city", "town", "ort", "stad", "postort", "poststed", "by", "bynavn"),
    Role.COUNTRY: (
        "country", "countrycode", "land", "landskod", "landkode"),
    Role.LANGUAGE: (
        "language", "languagecode", "sprak", "sprakkod", "sprakkode", "sprog"),
}
_ROLE_OF_HEADER = {header: role for role, headers in _HEADERS.items() for header in headers}
# letters NFKD does not take apart
_FOLD = str.maketrans({"ø": "o", "æ": "ae", "ß": "ss", "đ": "d", "ł": "l"})
_NOT_LETTER_OR_DIGIT = re.compile(r"[^a-z0-9]")


def header_key(header: str) -> str:
    """`header` without case, accents, spaces and punctuation: "Kund-ID" -> "kundid"."""
    text = unicodedata.normalize("NFKD", header.casefold().translate(_FOLD))
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return _NOT_LETTER_OR_DIGIT.sub("", text)


def role_of_header(header: str) -> Role | None:
    """What a column with this header holds, when the header makes it obvious."""
    return _ROLE_OF_HEADER.get(header_key(header))


@dataclass(slots=True)
class AutoMapping:
    """A mapping guessed from a header, and the columns it left for the user to decide."""

    mapping: Mapping
    unmapped: list[str] = field(default_factory=list)
    roles: dict[str, Role] = field(default_factory=dict)  # column -> what it was taken for


def auto_map(columns: Sequence[str], *, name: str = "") -> AutoMapping:
    """Map the columns whose header is obvious; the first column of a role wins.

    The entries are `CREATE` of a `PERSON` (the mapper's default) unless the user says
    otherwise; a second column of the same role (Phone and Mobile) stays unmapped.
    """
    fields: dict[str, str] = {}
    roles: dict[str, Role] = {}
    unmapped: list[str] = []
    for column in columns:
        role = role_of_header(column)
        if role is None or TARGET_OF_ROLE[role] in fields:
            unmapped.append(column)
            continue
        fields[TARGET_OF_ROLE[role]] = column
        roles[column] = role
    mapping = Mapping(name=name, fields=fields, null_values=DEFAULT_NULL_VALUES)
    return AutoMapping(mapping, unmapped, roles)
