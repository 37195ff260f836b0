# The decoder's fast path as C over a frame's bytes, included by both compiled modules: sensor/_core.pyx
# builds a Segment from it (`decode_fast`), sensor/_flow.pyx feeds the flow table from it without one
# (`FlowTable.feed`). Its reference is sensor/flow/decode.py `decode_fast`, line for line. Frames it does not
# fully understand (other link types, IPv4 fragments and bad headers, IPv6 extension headers, other
# protocols) return 0: the caller hands them to the dpkt path, which decides and counts.
# Every read is bounds-checked by hand against the frame's length first: the bytes come from the wire.

cdef struct Frame:
    Py_ssize_t src     # offset of the source address; the destination address follows it
    Py_ssize_t alen    # 4 (IPv4) or 16 (IPv6)
    unsigned int sport, dport, proto, flags
    unsigned long seq
    Py_ssize_t pay     # the transport payload is [pay, end)
    Py_ssize_t end


cdef inline unsigned int _u16(const unsigned char* p, Py_ssize_t i) noexcept nogil:
    return (p[i] << 8) | p[i + 1]


cdef inline unsigned long _u32(const unsigned char* p, Py_ssize_t i) noexcept nogil:
    return (<unsigned long> p[i] << 24) | (<unsigned long> p[i + 1] << 16) | (<unsigned long> p[i + 2] << 8) | p[i + 3]


cdef inline bint frame_decode(const unsigned char* p, Py_ssize_t n, long linktype, Frame* f) noexcept nogil:
    """1 when the fast path fully understands the frame (its fields in `f`), else 0."""
    cdef unsigned int et, vihl, total, frag, proto, doff, hl, plen
    cdef Py_ssize_t off, t, end, q
    if linktype != 1 or n < 34:
        return 0
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
                    f.src, f.alen, f.proto = 26, 4, 6
                    f.sport, f.dport, f.seq, f.flags = _u16(p, 34), _u16(p, 36), _u32(p, 38), p[47]
                    f.pay, f.end = q, end
                    return 1
            elif proto == 17 and end >= 42:
                f.src, f.alen, f.proto = 26, 4, 17
                f.sport, f.dport, f.seq, f.flags = _u16(p, 34), _u16(p, 36), 0, 0
                f.pay, f.end = 42, end
                return 1
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
            return 0
        vihl = p[off]
        total = _u16(p, off + 2)
        frag = _u16(p, off + 6)
        proto = p[off + 9]
        hl = (vihl & 15) << 2
        if vihl >> 4 != 4 or hl < 20 or frag & 0x3FFF:
            return 0
        f.src, f.alen = off + 12, 4
        t = off + hl
        if total:
            if total < hl:
                return 0
            end = off + total
            if end > n:
                end = n
        else:  # 0: segmentation offload on the capturing host; the frame is the datagram
            end = n
    elif et == 0x86DD:
        if n < off + 40 or p[off] >> 4 != 6:
            return 0
        plen = _u16(p, off + 4)
        proto = p[off + 6]
        f.src, f.alen = off + 8, 16
        t = off + 40
        end = t + plen if plen else n
        if end > n:
            end = n
    else:
        return 0
    if proto == 6:
        if t + 20 > end:
            return 0
        doff = p[t + 12]
        q = t + ((doff >> 4) << 2)
        if doff < 0x50 or q > end:
            return 0
        f.proto = 6
        f.sport, f.dport, f.seq, f.flags = _u16(p, t), _u16(p, t + 2), _u32(p, t + 4), p[t + 13]
        f.pay, f.end = q, end
        return 1
    if proto == 17:
        if t + 8 > end:
            return 0
        f.proto = 17
        f.sport, f.dport, f.seq, f.flags = _u16(p, t), _u16(p, t + 2), 0, 0
        f.pay, f.end = t + 8, end
        return 1
    return 0
