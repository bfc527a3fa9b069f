"""Validates every signature of a PDF with pyHanko, offline, with the given roots as the only
trust anchors (for the signer and for the signature timestamp), and prints the verdict of
each as JSON: {"signatures": [{"intact", "valid", "trusted", "coverage", "modification_level",
"timestamp": {"intact", "valid", "trusted", "time"} | null, "signer", "sub_filter"}]}.

usage: pades_check.py FILE.pdf ROOTS.pem
"""

import json
import sys

from asn1crypto import pem, x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko_certvalidator import ValidationContext


def roots(path):
    with open(path, "rb") as f:
        data = f.read()
    return [x509.Certificate.load(der) for _, _, der in pem.unarmor(data, multiple=True)]


def main():
    pdf_path, roots_path = sys.argv[1], sys.argv[2]
    anchors = roots(roots_path)
    # Offline: nothing fetched; the development chain has no revocation service.
    context = lambda: ValidationContext(
        trust_roots=anchors, allow_fetching=False, revocation_mode="soft-fail"
    )
    verdicts = []
    with open(pdf_path, "rb") as f:
        reader = PdfFileReader(f)
        for sig in reader.embedded_signatures:
            status = validate_pdf_signature(
                sig,
                signer_validation_context=context(),
                ts_validation_context=context(),
                # A seal certificate carries digitalSignature (ETSI EN 319 412-3).
                key_usage_settings=KeyUsageConstraints(key_usage={"digital_signature"}),
            )
            ts = status.timestamp_validity
            verdicts.append(
                {
                    "intact": status.intact,
                    "valid": status.valid,
                    "trusted": status.trusted,
                    "coverage": status.coverage.name if status.coverage else None,
                    "modification_level": status.modification_level.name
                    if status.modification_level
                    else None,
                    "timestamp": None
                    if ts is None
                    else {
                        "intact": ts.intact,
                        "valid": ts.valid,
                        "trusted": ts.trusted,
                        "time": ts.timestamp.isoformat(),
                    },
                    "signer": status.signing_cert.subject.human_friendly,
                    "sub_filter": sig.sig_object.get("/SubFilter"),
                }
            )
    print(json.dumps({"signatures": verdicts}, default=str))


if __name__ == "__main__":
    main()
