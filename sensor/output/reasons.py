"""What each reason code behind a severity or an incident score means, in words an analyst reads."""

from __future__ import annotations

# Finding reasons come from detect/severity.py (`stagewatch.reasons`), incident reasons from
# correlate/engine.py (`stagewatch.incident.reasons`). Output sits below both layers, so the
# words live here; an unknown code is shown as it is.
REASONS = {
    # findings
    "outbound": "the data left home_net (alert)",
    "inbound": "the data came into home_net (event to hunt with)",
    "internal": "sent between two home_net hosts",
    "external": "sent between two hosts outside home_net",
    "staging_path": "the file sits in a staging folder (Temp, AppData, ProgramData, /tmp...)",
    "encrypted": "the archive's entries or headers are encrypted",
    "sensitive_name": "a member name matches the sensitive-name list",
    "extension_mismatch": "the file's extension hides its format",
    "encoded": "the member was wrapped in base64/hex or another encoding",
    "archive_without_compression": "an archive without compression (lower severity)",
    "inside_container": "inside a format that is compressed by design (PNG, PDF, Office...)",
    "zip_is_document": "the zip is itself a document (Office, OpenDocument, JAR...)",
    "log_folder": "a rotated log under /var/log",
    "content_rule": "a content rule matched the decompressed data (stagewatch.inner.rules)",
    # incidents
    "same_sha256": "the staged file's SHA-256 equals the transferred member's",
    "process_connection": "a Sysmon 3 connection is the flow that carried the member: the process is known",
    "same_name": "the staged or created file's name is the transfer's",
    "created_by_process": "a host event shows the process creating the staged file",
    "size_fits_encrypted_flow": "an encrypted flow's bytes fit the staged file's size",
    "host_rule_compress": "a host rule saw a process compressing with a library",
    "host_rule_unknown": "a host rule hit whose direction (compress or expand) is unknown",
    "staged_alert": "a staged compressed file on the host is an alert",
    "outbound_member": "a verified compressed member left home_net",
}


def explain_reason(code: str) -> str:
    """The sentence for one reason code; host rules' `rule:NAME` and `operation:OP` are read as such."""
    if code in REASONS:
        return REASONS[code]
    head, _, tail = code.partition(":")
    if head == "rule" and tail:
        return f"host rule {tail} matched"
    if head == "operation" and tail:
        return f"the process looks like it does: {tail}"
    return ""
