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
