/*
 * Object-start rules: soft fields that would flood if scanned anywhere (SIGNATURES.md §1.2,
 * §1.6, §6.3). Condition-only (no strings, no atoms); run on an object's first bytes only.
 */

rule zlib_small_window
{
    meta:
        format = "zlib"
        role = "anchored"
    condition:
        // CM 8, CINFO 0-6 (windows below 32 KiB; 0x78 is covered anywhere), FCHECK, no FDICT
        uint8(0) & 0x0F == 8 and uint8(0) < 0x78 and uint16be(0) % 31 == 0 and
        uint8(1) & 0x20 == 0 and uint8(2) & 6 != 6
}

rule lzma_alone_any_props
{
    meta:
        format = "lzma"
        role = "anchored"
    condition:
        // properties byte < 225; dictionary 2^n or 2^n + 2^(n-1) (liblzma's "picky" test);
        // size unknown (all ones) or below 2^38; first range-coder byte 00
        uint8(0) < 225 and uint8(13) == 0 and
        (uint32(1) & (uint32(1) - 1) == 0 or
         (uint32(1) % 3 == 0 and (uint32(1) \ 3) & ((uint32(1) \ 3) - 1) == 0)) and
        ((uint32(5) == 0xFFFFFFFF and uint32(9) == 0xFFFFFFFF) or uint32(9) < 0x40)
}

rule lznt1_chunk
{
    meta:
        format = "lznt1"
        role = "anchored"
    condition:
        // RtlCompressBuffer(COMPRESSION_FORMAT_LZNT1): a chunk header word, signature 3 in bits 12-14; a
        // compressed chunk's flag byte follows, a stored one is a whole 4 KiB (size field 4095). Three bits of
        // signature are no proof: the verifier decodes and asks for typed or non-uniform output
        uint16(0) & 0x7000 == 0x3000 and
        (uint16(0) & 0x8000 == 0x8000 or uint16(0) & 0x0FFF == 0x0FFF) and
        filesize >= 4
}

rule xpress_start
{
    meta:
        format = "xpress"
        role = "anchored"
    condition:
        // RtlCompressBuffer(COMPRESSION_FORMAT_XPRESS) has no header: a 32-bit flag word, bit 31 first. The
        // first token must be a literal (nothing to copy yet), and the first copy among the next three must
        // reach no further back than the literals before it (13-bit distance - 1 in the token's high bits)
        filesize >= 16 and uint8(3) & 0x80 == 0 and
        (uint8(3) & 0x40 == 0 or uint16(5) < 8) and
        (uint8(3) & 0x60 != 0x20 or uint16(6) < 16) and
        (uint8(3) & 0x70 != 0x10 or uint16(7) < 24)
}

rule xpress_huffman_table
{
    meta:
        format = "xpress_huffman"
        role = "anchored"
    condition:
        // RtlCompressBuffer(COMPRESSION_FORMAT_XPRESS_HUFF): 256 bytes of 4-bit code lengths open the stream.
        // A prefix code's lengths have a Kraft sum of at most 1, so at most 16 of them are 1-4 bits and at
        // most 128 are 1-7 bits; text and random bytes have far more. The verifier checks the exact sum
        filesize >= 260 and
        not for 17 i in (0..255) : (uint8(i) & 0x0F != 0 and uint8(i) & 0x0F <= 4) and
        not for 17 i in (0..255) : (uint8(i) >= 0x10 and uint8(i) < 0x50) and
        not for 129 i in (0..255) : (uint8(i) & 0x0F != 0 and uint8(i) & 0x0F <= 7) and
        not for 129 i in (0..255) : (uint8(i) >= 0x10 and uint8(i) < 0x80) and
        for any i in (0..255) : (uint8(i) != 0)
}
