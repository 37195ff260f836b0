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
