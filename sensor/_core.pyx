# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The compiled core, first stage: the decoder's fast path in C (sensor/flow/decode.py `_decode_fast` is its
reference, line for line) and the classic-pcap record loop (sensor/capture/pcapfile.py `pcap_records`).

Frames the fast path fully understands (Ethernet with 0-2 VLAN tags, unfragmented IPv4, IPv6 without
extension headers, TCP and UDP) become a Segment here without a Python object per header; for any other
frame `decode_fast` returns None and the caller takes the reference's dpkt path, which decides and counts.
Reads are bounds-checked by hand against the frame's length before each header is touched: the bytes
come from the wire.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE

from sensor.model import Segment

cdef object _new = tuple.__new__
cdef object _Segment = Segment
cdef bint _overread = False  # tests only: one byte read past the frame, to show the sanitizer build catches it


def _test_overread(bint on):
    """Switch on (tests of `make sanitize` only) a one-byte over-read past the end of every frame decoded."""
    global _overread
    _overread = on


cdef inline unsigned int _u16(const unsigned char* p, Py_ssize_t i) noexcept nogil:
    return (p[i] << 8) | p[i + 1]


cdef inline unsigned long _u32(const unsigned char* p, Py_ssize_t i) noexcept nogil:
    return (<unsigned long> p[i] << 24) | (<unsigned long> p[i + 1] << 16) | (<unsigned long> p[i + 2] << 8) | p[i + 3]


cpdef object decode_fast(double ts, long linktype, bytes data, long long index):
    """The frame's Segment when the fast path fully understands it, else None (not "undecodable": the caller
    hands such frames to the dpkt path)."""
    cdef const unsigned char* p = <const unsigned char*> PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef unsigned int et, vihl, total, frag, proto, doff, flags, hl, plen
    cdef Py_ssize_t off, t, end, q
    cdef volatile unsigned char sink
    if _overread:
        sink = p[n + 1]  # past the terminating NUL of the bytes object: a heap over-read under ASan
    if linktype != 1 or n < 34:
        return None
    if n >= 54:
        # the usual frame, untagged Ethernet + IPv4 with a 20-byte header + TCP/UDP
        et = _u16(p, 12)
        vihl = p[14]
        total = _u16(p, 16)
        frag = _u16(p, 20)
        if et == 0x0800 and vihl == 0x45 and total >= 20 and not (frag & 0x3FFF):
            end = 14 + total  # the IP length, not the frame: Ethernet padding is not payload
            if end > n:
                end = n
            proto = p[23]
            if proto == 6:
                doff = p[46]
                q = 34 + ((doff >> 4) << 2)
                if doff >= 0x50 and q <= end:
                    return _new(_Segment, (ts, index, data[26:30], data[30:34], _u16(p, 34), _u16(p, 36), 6,
                                           _u32(p, 38), p[47], data[q:end]))
            elif proto == 17 and end >= 42:
                return _new(_Segment, (ts, index, data[26:30], data[30:34], _u16(p, 34), _u16(p, 36), 17, 0, 0,
                                       data[42:end]))
    # the general fast path: VLAN tags, IPv4 options, IPv6, short frames
    et = _u16(p, 12)
    off = 14
    if et == 0x8100 or et == 0x88A8 or et == 0x9100:
        et = _u16(p, 16)
        off = 18
        if et == 0x8100:
            et = _u16(p, 20)
            off = 22
    if et == 0x0800:
        if n < off + 20:
            return None
        vihl = p[off]
        total = _u16(p, off + 2)
        frag = _u16(p, off + 6)
        proto = p[off + 9]
        hl = (vihl & 15) << 2
        if vihl >> 4 != 4 or hl < 20 or frag & 0x3FFF:
            return None
        src = data[off + 12:off + 16]
        dst = data[off + 16:off + 20]
        t = off + hl
        if total:
            if total < hl:
                return None
            end = off + total
            if end > n:
                end = n
        else:  # 0: segmentation offload on the capturing host; the frame is the datagram
            end = n
    elif et == 0x86DD:
        if n < off + 40 or p[off] >> 4 != 6:
            return None
        plen = _u16(p, off + 4)
        proto = p[off + 6]
        src = data[off + 8:off + 24]
        dst = data[off + 24:off + 40]
        t = off + 40
        end = t + plen if plen else n
        if end > n:
            end = n
    else:
        return None
    if proto == 6:
        if t + 20 > end:
            return None
        doff = p[t + 12]
        flags = p[t + 13]
        q = t + ((doff >> 4) << 2)
        if doff < 0x50 or q > end:
            return None
        return _new(_Segment, (ts, index, src, dst, _u16(p, t), _u16(p, t + 2), 6, _u32(p, t + 4), flags, data[q:end]))
    if proto == 17:
        if t + 8 > end:
            return None
        return _new(_Segment, (ts, index, src, dst, _u16(p, t), _u16(p, t + 2), 17, 0, 0, data[t + 8:end]))
    return None


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
