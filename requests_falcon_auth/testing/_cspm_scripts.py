"""The Azure registration script that Falcon Cloud Security hands out as a download.

``GET /cloud-connect-cspm-azure/entities/user-scripts-download/v1`` answers the script itself
(bytes, not the JSON envelope), which falconpy returns to its caller as ``bytes``. The emulator
registers no Azure accounts, so its script does nothing but say what it is.
"""

from __future__ import annotations

from typing import Final

from ._api_call import OCTET_STREAM, ApiAnswer, ApiCall

__all__ = ["AZURE_SCRIPT", "AZURE_SCRIPT_PATH", "azure_user_script"]

AZURE_SCRIPT_PATH: Final = "/cloud-connect-cspm-azure/entities/user-scripts-download/v1"
AZURE_SCRIPT: Final = (
    b"#!/bin/bash\n"
    b"# Falcon Cloud Security: Azure account registration script.\n"
    b"# Served by the falcon-emulator, which registers no Azure accounts: it does nothing.\n"
    b"exit 0\n"
)


def azure_user_script(call: ApiCall) -> ApiAnswer:
    """``GetCSPMAzureUserScriptsAttachment``: the script's bytes."""
    return ApiAnswer(200, body=AZURE_SCRIPT, content_type=OCTET_STREAM)
