"""Uses the client openapi-python-client generated from the served OpenAPI document, as is:
uploads a PDF, deposits a letter, lists its evidence and downloads the record, its seal and
its token, then the bundle; prints one JSON object of what it saw.

argv: the directory holding the generated package, the base URL, the API key, a PDF file.
"""

import hashlib
import json
import sys

sys.path.insert(0, sys.argv[1])

from recommande_client import AuthenticatedClient  # noqa: E402
from recommande_client.api.documents import upload  # noqa: E402
from recommande_client.api.evidence import bundle, evidence_evidence_file, evidence_list  # noqa: E402
from recommande_client.api.letters import deposit, letters_show  # noqa: E402
from recommande_client.models import DepositBody, UploadForm  # noqa: E402
from recommande_client.types import File  # noqa: E402

base, key, pdf = sys.argv[2], sys.argv[3], sys.argv[4]
client = AuthenticatedClient(base_url=base, token=key)

with open(pdf, "rb") as f:
    document = upload.sync(
        client=client,
        body=UploadForm(file=File(payload=f, file_name="relance.pdf", mime_type="application/pdf")),
    )
letter = deposit.sync(
    client=client,
    idempotency_key="generated-client-1",
    body=DepositBody.from_dict(
        {
            "sender": {"name": "Cabinet Recouvr", "email": "envoi@recouvr.fr"},
            "recipient": {"name": "SARL Débitrice", "email": "compta@debitrice.fr", "kind": "professional"},
            "reference": "GEN-1",
            "documents": [document.id],
        }
    ),
)
shown = letters_show.sync(client=client, id=letter.id)
listed = evidence_list.sync(client=client, id=letter.id)
first = listed.evidence[0]
files = {}
for ext in ("json", "p7s", "tsr"):
    answer = evidence_evidence_file.sync_detailed(client=client, id=letter.id, file=f"{first.id}.{ext}")
    files[ext] = answer.content
zipped = bundle.sync_detailed(client=client, id=letter.id)
print(
    json.dumps(
        {
            "document": document.id,
            "letter": letter.id,
            "state": str(shown.state.value if hasattr(shown.state, "value") else shown.state),
            "evidence": [e.event for e in listed.evidence],
            "record_sha256": hashlib.sha256(files["json"]).hexdigest(),
            "summary_sha256": first.sha256,
            "seal_bytes": len(files["p7s"]),
            "token_bytes": len(files["tsr"]),
            "bundle_status": zipped.status_code,
            "bundle_magic": zipped.content[:2].decode("latin-1"),
        }
    )
)
