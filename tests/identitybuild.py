"""Packets that name hosts, built with scapy's own protocol layers: DHCP REQUEST/ACK, NetBIOS name
registrations, LLMNR and mDNS answers, Kerberos AS-REQs (UDP and TCP), NTLMSSP AUTHENTICATE in SMB
SESSION_SETUP and in HTTP. Used by tests/test_identity.py."""

from __future__ import annotations

import base64
import struct

from scapy.asn1.asn1 import ASN1_GENERAL_STRING, ASN1_INTEGER
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import IP, UDP
from scapy.layers.kerberos import KRB_AS_REQ, KRB_KDC_REQ_BODY, Kerberos, PrincipalName
from scapy.layers.l2 import Ether
from scapy.layers.ntlm import NTLM_AUTHENTICATE_V2
from scapy.packet import Packet

from tests import smbbuild as sb


def _at(pkt: Packet, ts: float) -> Packet:
    pkt.time = ts
    return pkt


def mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def dhcp_exchange(mac: str, addr: str, name: str | None, ts: float, lease: int = 3600, relay: str | None = None,
                  xid: int = 0x1234) -> list[Packet]:  # fmt: skip
    """A client's REQUEST (naming itself in option 12) and the server's ACK (which names nobody), as most
    servers answer; through a relay when `relay` is given (the ACK's IP source is then the relay's)."""
    opts = [("message-type", "request"), ("requested_addr", addr)]
    if name:
        opts.append(("hostname", name.encode()))
    request = (
        Ether(src=mac, dst="ff:ff:ff:ff:ff:ff")
        / IP(src="0.0.0.0", dst="255.255.255.255")
        / UDP(sport=68, dport=67)
        / BOOTP(op=1, chaddr=mac_bytes(mac), xid=xid)
        / DHCP(options=[*opts, "end"])
    )
    server = relay or "10.0.0.1"
    ack = (
        Ether(dst=mac)
        / IP(src=server, dst=addr)
        / UDP(sport=67, dport=68)
        / BOOTP(op=2, yiaddr=addr, giaddr=relay or "0.0.0.0", chaddr=mac_bytes(mac), xid=xid)
        / DHCP(options=[("message-type", "ack"), ("lease_time", lease), ("server_id", "10.0.0.1"), "end"])
    )
    return [_at(request, ts), _at(ack, ts + 0.01)]


def _netbios_encode(name: str, suffix: int) -> bytes:
    raw = name.upper().ljust(15)[:15].encode() + bytes([suffix])
    return b"".join(bytes([0x41 + (b >> 4), 0x41 + (b & 15)]) for b in raw)


def nbns_registration(name: str, addr: str, ts: float, suffix: int = 0x00, group: bool = False) -> Packet:
    """A NetBIOS name registration request (broadcast), as Windows sends at boot."""
    label = _netbios_encode(name, suffix)
    question = bytes([32]) + label + b"\x00" + struct.pack("!HH", 0x20, 1)
    nb_flags = 0x8000 if group else 0
    rr = (
        b"\xc0\x0c"
        + struct.pack("!HHIH", 0x20, 1, 300000, 6)
        + struct.pack("!H", nb_flags)
        + bytes(int(x) for x in addr.split("."))
    )
    msg = struct.pack("!HHHHHH", 0x7001, 0x2910, 1, 0, 0, 1) + question + rr
    return _at(Ether() / IP(src=addr, dst="10.255.255.255") / UDP(sport=137, dport=137) / msg, ts)


def name_answer(name: str, addr: str, ts: float, port: int) -> Packet:
    """An LLMNR (5355) or mDNS (5353) answer stating `name` has address `addr`."""
    dns = DNS(id=0 if port == 5353 else 7, qr=1, aa=1, qd=[DNSQR(qname=name)] if port == 5355 else [],
              an=DNSRR(rrname=name, type="A", rdata=addr, ttl=120))  # fmt: skip
    dst = "224.0.0.251" if port == 5353 else "10.1.2.200"
    return _at(Ether() / IP(src=addr, dst=dst) / UDP(sport=port, dport=port if port == 5353 else 49000) / dns, ts)


def as_req(principal: str, realm: str = "CORP.EXAMPLE") -> bytes:
    """A Kerberos AS-REQ for `principal` (a machine account ends in $)."""
    body = KRB_KDC_REQ_BODY(
        cname=PrincipalName(nameType=1, nameString=[ASN1_GENERAL_STRING(principal.encode())]),
        realm=ASN1_GENERAL_STRING(realm.encode()),
        sname=PrincipalName(
            nameType=2, nameString=[ASN1_GENERAL_STRING(b"krbtgt"), ASN1_GENERAL_STRING(realm.encode())]
        ),
        nonce=12345,
        etype=[ASN1_INTEGER(18), ASN1_INTEGER(17)],
    )
    return bytes(Kerberos(root=KRB_AS_REQ(reqBody=body)))


def kerberos_udp(principal: str, client: str, ts: float, kdc: str = "10.0.0.2") -> Packet:
    return _at(Ether() / IP(src=client, dst=kdc) / UDP(sport=50088, dport=88) / as_req(principal), ts)


def ntlm_authenticate(workstation: str, user: str = "bob", domain: str = "CORP") -> bytes:
    return bytes(NTLM_AUTHENTICATE_V2(NegotiateFlags=0x1 | 0x200, DomainName=domain, UserName=user,
                                      Workstation=workstation))  # fmt: skip


def smb_session_setup(mid: int, blob: bytes) -> bytes:
    """An SMB2 SESSION_SETUP request carrying `blob` (a bare NTLMSSP message, as some clients send it)."""
    body = struct.pack("<HBBIIHHQ", 25, 0, 1, 0, 0, 64 + 24, len(blob), 0)
    return sb.header(1, mid, tree=0) + body + blob


def http_ntlm_request(workstation: str) -> bytes:
    token = base64.b64encode(ntlm_authenticate(workstation)).decode()
    return f"GET /intranet HTTP/1.1\r\nHost: intranet\r\nAuthorization: NTLM {token}\r\n\r\n".encode()


__all__ = [
    "as_req",
    "dhcp_exchange",
    "http_ntlm_request",
    "kerberos_udp",
    "name_answer",
    "nbns_registration",
    "ntlm_authenticate",
    "smb_session_setup",
]
