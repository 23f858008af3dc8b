"""A throwaway certificate authority for the smoke test's HTTPS step.

    python packaging/make_test_ca.py FOLDER

Writes into FOLDER (created if needed):

    ca.pem                 the authority: add it to the system's trust store
    server.pem/.key        a certificate for 127.0.0.1 and localhost that it issued
    untrusted-server.pem/.key
                           the same names from another authority, never installed

The smoke test (packaging/smoke_test.py) runs its HTTPS step only when SMOKE_TEST_CA
names ca.pem, which says that CA is installed; it finds the other files beside it.
Needs `trustme` (in the project's `package` and `test` extras).
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

CA_FILE = "ca.pem"
SERVER_CERT, SERVER_KEY = "server.pem", "server.key"
UNTRUSTED_CERT, UNTRUSTED_KEY = "untrusted-server.pem", "untrusted-server.key"
# how the authority shows in the trust store (the Windows certificate store, Keychain Access)
CA_NAME = "Bulk Customer Import smoke test"
SERVER_NAMES = ("127.0.0.1", "localhost")


def make_test_ca(folder: Path) -> Path:
    """Write the authority and both server certificates into `folder`; returns ca.pem."""
    import trustme  # only the machine that makes the files needs it

    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    # short-lived server certificates: macOS refuses TLS server certificates valid for
    # more than 825 days, and trustme's default runs to the year 3000
    validity = {"not_before": now - datetime.timedelta(days=1),
                "not_after": now + datetime.timedelta(days=30)}
    trusted = trustme.CA(organization_name=CA_NAME, organization_unit_name=f"{CA_NAME} CA")
    untrusted = trustme.CA(organization_name=CA_NAME,
                           organization_unit_name=f"{CA_NAME} CA (never trusted)")
    trusted.cert_pem.write_to_path(str(folder / CA_FILE))
    for ca, cert_file, key_file in ((trusted, SERVER_CERT, SERVER_KEY),
                                    (untrusted, UNTRUSTED_CERT, UNTRUSTED_KEY)):
        leaf = ca.issue_cert(*SERVER_NAMES, **validity)
        (folder / cert_file).write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        leaf.private_key_pem.write_to_path(str(folder / key_file))
    return folder / CA_FILE


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__)
        return 2
    print(make_test_ca(Path(argv[0]).resolve()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
