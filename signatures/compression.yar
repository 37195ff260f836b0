/*
 * Candidate rules for compressed streams, scanned anywhere in an object.
 * Hard fields only (fields a decoder rejects when wrong): see SIGNATURES.md §0 rule 2 and §8.
 * Every hit is only a candidate: Python re-parses the header and trial-decodes it.
 * meta: format = stagewatch.format; role = candidate; bits = constrained bits of the pattern.
 */
rule gzip_member
{
    meta:
        format = "gzip"
        role = "candidate"
        bits = 27
    strings:
        // ID1 ID2, CM = 8 (deflate), FLG with reserved bits 5-7 clear
        $a = { 1F 8B 08 ( 0? | 1? ) }
    condition:
        $a
}

rule bzip2_stream
{
    meta:
        format = "bzip2"
        role = "candidate"
        bits = 76
    strings:
        // "BZh", level '1'-'9', then the block magic (BCD pi) or end-of-stream magic (BCD sqrt pi)
        $a = { 42 5A 68 ( 31 | 32 | 33 | 34 | 35 | 36 | 37 | 38 | 39 )
               ( 31 41 59 26 53 59 | 17 72 45 38 50 90 ) }
    condition:
        $a
}

rule xz_stream
{
    meta:
        format = "xz"
        role = "candidate"
        bits = 62
    strings:
        // magic, stream flags 00 + check type (none, CRC32, CRC64, SHA-256); the flags' CRC-32 is the
        // verifier's to check: 62 bits already make a random hit once per 2^32 GiB, and importing the
        // hash module costs yara-x's Python binding ~7 us on every scan call (bench_flood, 2 calls per flow)
        $a = { FD 37 7A 58 5A 00 00 ( 00 | 01 | 04 | 0A ) }
    condition:
        $a
}

rule lzma_alone
{
    meta:
        format = "lzma"
        role = "candidate"
        bits = 56
    strings:
        // props 5D (lc3 lp0 pb2), dictionary >= 64 KiB, unknown or < 2^40 size, first range byte 00
        $a = { 5D 00 00 ?? ?? ( FF FF FF FF FF FF FF FF | ?? ?? ?? ?? ?? 00 00 00 ) 00 }
    condition:
        $a
}

rule zstd_frame
{
    meta:
        format = "zstd"
        role = "candidate"
        bits = 33
    strings:
        // magic 0xFD2FB528, frame header descriptor with reserved bit 3 clear
        $a = { 28 B5 2F FD ( ?0 | ?1 | ?2 | ?3 | ?4 | ?5 | ?6 | ?7 ) }
    condition:
        $a
}

rule lz4_frame
{
    meta:
        format = "lz4"
        role = "candidate"
        bits = 41
    strings:
        // magic 0x184D2204, FLG version 01, BD with only the block-size bits set
        $a = { 04 22 4D 18 ( 4? | 5? | 6? | 7? ) ( 40 | 50 | 60 | 70 ) }
    condition:
        for any i in (1..#a) : ( uint8(@a[i] + 4) & 2 == 0 )
}

rule snappy_framed
{
    meta:
        format = "snappy"
        role = "candidate"
        bits = 80
    strings:
        // stream identifier chunk: type FF, length 6, "sNaPpY"
        $a = { FF 06 00 00 73 4E 61 50 70 59 }
    condition:
        $a
}

rule dotnet_legacy_deflate
{
    meta:
        format = "deflate"
        role = "candidate"
        bits = 128
    strings:
        // fixed dynamic-Huffman preamble of the legacy managed .NET DeflateStream encoder
        // (corefx FastEncoderStatics.cs), non-final and final block forms
        $a = { ( EC | ED ) BD 07 60 1C 49 96 25 26 2F 6D CA 7B 7F 4A F5 }
    condition:
        $a
}
