"""TLS for the emulator: one throwaway CA per run and a certificate for the loopback names."""

from __future__ import annotations

import contextlib
import os
import ssl
import tempfile

__all__ = ["TlsMaterial"]

_INSTALL_HINT = (
    "FalconEmulator(tls=True) needs trustme: pip install 'requests-falcon-auth[testing]'"
)


class TlsMaterial:
    """A CA (its PEM written to a file, for ``verify=``) and a server context it vouches for.

    Args:
        hosts: the names and addresses the server certificate covers.

    Raises:
        ImportError: trustme is not installed.
    """

    def __init__(self, hosts: tuple[str, ...]) -> None:
        try:
            import trustme  # type: ignore[import-not-found, unused-ignore]
        except ImportError as exc:
            raise ImportError(_INSTALL_HINT) from exc
        ca = trustme.CA()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(*hosts).configure_cert(context)
        self.server_context: ssl.SSLContext = context
        fd, path = tempfile.mkstemp(prefix="falcon-emulator-ca-", suffix=".pem")
        with os.fdopen(fd, "wb") as file:
            file.write(ca.cert_pem.bytes())
        self.ca_bundle: str = path

    def close(self) -> None:
        """Deletes the CA file."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.ca_bundle)
