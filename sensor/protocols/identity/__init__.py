"""Host identities from the wire: which host had which address, from when (DHCP, NetBIOS, LLMNR, mDNS,
Kerberos, NTLMSSP). Read by the network scanner's datagram path and by the SMB, HTTP and Kerberos extractors;
recorded as `Identity` results, stored, and used by `correlate` to name the host of an address at a time."""

from sensor.protocols.identity.base import TRUST, Identities, sources
from sensor.registry import import_submodules

NOT_SOURCES = ("base", "ntlm")  # the seam; a helper the TCP extractors call
import_submodules(__name__, __path__, skip=NOT_SOURCES)

__all__ = ["NOT_SOURCES", "TRUST", "Identities", "sources"]
