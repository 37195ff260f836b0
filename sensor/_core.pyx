# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The compiled core, first stage: the decoder's fast path in C (sensor/_frame.pxi; its reference is
sensor/flow/decode.py `decode_fast`, line for line) and the classic-pcap and pcapng record loops
(sensor/capture/pcapfile.py `pcap_records`, `pcapng_blocks`).

Frames the fast path fully understands (Ethernet with 0-2 VLAN tags, unfragmented IPv4, IPv6 without
extension headers, TCP and UDP) become a Segment here without a Python object per header; for any other
frame `decode_fast` returns None and the caller takes the reference's dpkt path, which decides and counts.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.string cimport memcpy

from sensor.model import Segment

cdef object _new = tuple.__new__
cdef object _Segment = Segment
cdef bint _overread = False  # tests only: one byte read past the frame, to show the sanitizer build catches it


def _test_overread(bint on):
    """Switch on (tests of `make sanitize` only) a one-byte over-read past the end of every frame decoded."""
    global _overread
    _overread = on


include "_frame.pxi"


cpdef object decode_fast(double ts, long linktype, bytes data, long long index):
    """The frame's Segment when the fast path fully understands it, else None (not "undecodable": the caller
    hands such frames to the dpkt path)."""
    cdef const unsigned char* p = <const unsigned char*> PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef Frame f
    cdef volatile unsigned char sink
    if _overread:
        sink = p[n + 1]  # past the terminating NUL of the bytes object: a heap over-read under ASan
    if not frame_decode(p, n, linktype, &f):
        return None
    return _new(_Segment, (ts, index, data[f.src:f.src + f.alen], data[f.src + f.alen:f.src + 2 * f.alen], f.sport,
                           f.dport, f.proto, f.seq, f.flags, data[f.pay:f.end]))


cdef object _Packet = None


cdef inline unsigned long _le32(const unsigned char* p, Py_ssize_t i) noexcept nogil:
    return (<unsigned long> p[i + 3] << 24) | (<unsigned long> p[i + 2] << 16) | (<unsigned long> p[i + 1] << 8) | p[i]


def pcap_records(bytes buf, Py_ssize_t off, bint big_endian, double units, long linktype, long long index,
                 str path, long long max_record, list out):
    """The complete classic-pcap records of `buf` from `off`, appended to `out` as Packets (the reference is
    sensor/capture/pcapfile.py `pcap_records`). Returns (offset after the last whole record, last record
    number, payload bytes, the captured length that is not credible or -1)."""
    global _Packet
    if _Packet is None:
        from sensor.model import Packet
        _Packet = Packet
    cdef const unsigned char* p = <const unsigned char*> PyBytes_AS_STRING(buf)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(buf)
    cdef unsigned long sec, frac, incl, orig
    cdef Py_ssize_t end
    cdef long long nbytes = 0
    while off + 16 <= n:
        if big_endian:
            sec, frac, incl, orig = _u32(p, off), _u32(p, off + 4), _u32(p, off + 8), _u32(p, off + 12)
        else:
            sec, frac, incl, orig = _le32(p, off), _le32(p, off + 4), _le32(p, off + 8), _le32(p, off + 12)
        end = off + 16 + <Py_ssize_t> incl
        if end > n:
            if incl > max_record:
                return off, index, nbytes, <long long> incl
            break
        index += 1
        nbytes += incl
        out.append(_new(_Packet, (sec + frac / units, linktype, buf[off + 16:end], index, orig, path)))
        off = end
    return off, index, nbytes, -1


cdef inline unsigned int _le16(const unsigned char* p, Py_ssize_t i) noexcept nogil:
    return p[i] | (p[i + 1] << 8)


cdef object _pcapfile = None


def pcapng_blocks(bytes buf, Py_ssize_t off, long long base, st, str path, list out):
    """The complete pcapng blocks of `buf` from `off` (`base`: the file offset of buf[0]): packets appended to
    `out`, sections and interfaces kept in `st` (the reference is sensor/capture/pcapfile.py `pcapng_blocks`).
    Returns (offset after the last whole block, captured bytes, the corrupt framing that stopped it or None)."""
    global _Packet, _pcapfile
    if _Packet is None:
        from sensor.model import Packet
        _Packet = Packet
    if _pcapfile is None:
        from sensor.capture import pcapfile
        _pcapfile = pcapfile
    InputError = _pcapfile.InputError
    cdef const unsigned char* p = <const unsigned char*> PyBytes_AS_STRING(buf)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(buf)
    cdef bint big = st.order == ">"
    cdef list interfaces = st.interfaces
    cdef long long index = st.index
    cdef long long nbytes = 0
    cdef unsigned long btype, blen, iface, hi, lo, caplen, wirelen, snaplen
    cdef Py_ssize_t end
    last_ts = st.last_ts
    error = None
    while off + 8 <= n:
        btype = _u32(p, off) if big else _le32(p, off)
        blen = _u32(p, off + 4) if big else _le32(p, off + 4)
        if btype == 0x0A0D0D0A:
            if off + 12 > n:
                break
            magic = buf[off + 8:off + 12]
            if magic == b"\x1a\x2b\x3c\x4d":
                new_big = True
            elif magic == b"\x4d\x3c\x2b\x1a":
                new_big = False
            else:
                error = InputError(path, f"block at byte {base + off}: bad section byte-order magic", "format")
                break
            if new_big != big:
                big = new_big
                st.order = ">" if big else "<"
                btype = _u32(p, off) if big else _le32(p, off)
                blen = _u32(p, off + 4) if big else _le32(p, off + 4)
        # a packet block too short for its own fixed fields (EPB and PB 32 bytes, SPB 16) is framing gone wrong;
        # with it, every read below stays inside [off, end)
        if blen < 12 or blen & 3 or ((btype == 6 or btype == 2) and blen < 32) or (btype == 3 and blen < 16):
            where = f"record {index + 1}" if btype in (6, 3, 2) else "block"
            error = InputError(path, f"{where} at byte {base + off}: bad block length {blen}", "format")
            break
        end = off + <Py_ssize_t> blen
        if end > n:
            if blen > _pcapfile.MAX_RECORD:
                error = InputError(path, f"block at byte {base + off}: block length {blen} is not credible", "format")
            break
        if (_u32(p, end - 4) if big else _le32(p, end - 4)) != blen:
            what = f"block at byte {base + off}: block length {blen} does not match its trailer"
            error = InputError(path, what, "format")
            break
        if btype == 6 or btype == 2:
            if btype == 6:
                iface = _u32(p, off + 8) if big else _le32(p, off + 8)
            else:  # the obsolete Packet Block: a 16-bit interface id, then drops
                iface = _u16(p, off + 8) if big else _le16(p, off + 8)
            hi = _u32(p, off + 12) if big else _le32(p, off + 12)
            lo = _u32(p, off + 16) if big else _le32(p, off + 16)
            caplen = _u32(p, off + 20) if big else _le32(p, off + 20)
            wirelen = _u32(p, off + 24) if big else _le32(p, off + 24)
            if caplen > blen - 32 or iface >= <unsigned long> len(interfaces):  # blen >= 32 here
                error = _pcapfile._bad_packet(path, index + 1, base + off, iface, caplen, interfaces)
                break
            linktype, _, units, tsoffset = interfaces[iface]
            # Python's int arithmetic, as the reference does it: a correctly rounded quotient of 64-bit counts
            last_ts = ((<object> hi << 32) | lo) / units + tsoffset
            index += 1
            nbytes += caplen
            out.append(_new(_Packet, (last_ts, linktype, buf[off + 28:off + 28 + <Py_ssize_t> caplen], index,
                                      wirelen, path)))
        elif btype == 3:
            if not interfaces:
                error = _pcapfile._bad_packet(path, index + 1, base + off, 0, 0, interfaces)
                break
            linktype, snaplen, _, _ = interfaces[0]
            wirelen = _u32(p, off + 8) if big else _le32(p, off + 8)
            caplen = wirelen
            if blen - 16 < caplen:
                caplen = blen - 16
            if snaplen and snaplen < caplen:
                caplen = snaplen
            index += 1
            nbytes += caplen
            out.append(_new(_Packet, (last_ts, linktype, buf[off + 12:off + 12 + <Py_ssize_t> caplen], index,
                                      wirelen, path)))
        elif btype == 1:
            if blen < 20:
                error = InputError(path, f"block at byte {base + off}: interface block too short ({blen} bytes)",
                                   "format")
                break
            interfaces.append(_pcapfile._interface(buf, off, end, st.order))
        elif btype == 0x0A0D0D0A:
            st.sections += 1
            interfaces = st.interfaces = []
        off = end
    st.index = index
    st.last_ts = last_ts
    return off, nbytes, error


cdef inline unsigned long _ne32(const unsigned char* p, Py_ssize_t i) noexcept nogil:
    cdef unsigned int v  # the ring is in the host's byte order; memcpy, as a test's buffer may be unaligned
    memcpy(&v, p + i, 4)
    return v


cdef inline unsigned int _ne16(const unsigned char* p, Py_ssize_t i) noexcept nogil:
    cdef unsigned short v
    memcpy(&v, p + i, 2)
    return v


def ring_block(ring, Py_ssize_t base, str source, long long n, list out):
    """The frames of the TPACKET_V3 block at `base` of the mmap'ed ring, appended to `out` as Packets numbered
    after `n`, VLAN tags put back; returns the last number (the reference is sensor/capture/live.py
    `ring_block`)."""
    global _Packet
    if _Packet is None:
        from sensor.model import Packet
        _Packet = Packet
    cdef const unsigned char[::1] view = ring
    cdef const unsigned char* r = &view[0]
    cdef Py_ssize_t size = view.shape[0]
    cdef unsigned long count, i, nxt, sec, nsec, snaplen, wirelen, status, tci, tpid, tag
    cdef unsigned int mac
    cdef Py_ssize_t p
    cdef char* w
    if base + 20 > size:
        return n
    count = _ne32(r, base + 12)
    p = base + <Py_ssize_t> _ne32(r, base + 16)
    for i in range(count):
        if p + 58 >= size:  # SLL_PKTTYPE: the sockaddr_ll after the aligned 48-byte tpacket3_hdr, +10
            break
        nxt, sec, nsec = _ne32(r, p), _ne32(r, p + 4), _ne32(r, p + 8)
        snaplen, wirelen, status = _ne32(r, p + 12), _ne32(r, p + 16), _ne32(r, p + 20)
        mac = _ne16(r, p + 24)
        tci = _ne32(r, p + 32)
        tpid = _ne16(r, p + 36)
        if p + mac + <Py_ssize_t> snaplen > size:
            break
        if r[p + 58] != 4:  # PACKET_OUTGOING: a SPAN port sends nothing, so these are our own
            if status & 0x10:  # TP_STATUS_VLAN_VALID
                tag = tpid if status & 0x40 and tpid else 0x8100  # TP_STATUS_VLAN_TPID_VALID
                data = PyBytes_FromStringAndSize(NULL, snaplen + 4)
                w = PyBytes_AS_STRING(data)
                if snaplen >= 12:
                    memcpy(w, r + p + mac, 12)
                    memcpy(w + 16, r + p + mac + 12, snaplen - 12)
                    w[12], w[13] = <char> (tag >> 8), <char> (tag & 0xFF)
                    w[14], w[15] = <char> ((tci >> 8) & 0xFF), <char> (tci & 0xFF)
                else:  # shorter than two MAC addresses: as the reference slices it, the tag at the end
                    memcpy(w, r + p + mac, snaplen)
                    w[snaplen], w[snaplen + 1] = <char> (tag >> 8), <char> (tag & 0xFF)
                    w[snaplen + 2], w[snaplen + 3] = <char> ((tci >> 8) & 0xFF), <char> (tci & 0xFF)
                wirelen += 4
            else:
                data = PyBytes_FromStringAndSize(<const char*> (r + p + mac), snaplen)
            n += 1
            out.append(_new(_Packet, (sec + nsec * 1e-9, 1, data, n, wirelen, source)))
        if not nxt:
            break  # the block's last frame: a count past it would read this frame again and again
        p += <Py_ssize_t> nxt
    return n
