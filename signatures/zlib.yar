/*
 * The zlib rules, kept in a file of their own: their 2-3 byte atoms hit about 65,000 times per
 * GiB of random data (SIGNATURES.md §2), and yara-x loses its fast path when such atoms share
 * an automaton with the other rules (§6.5). `hot = "true"` puts a file in its own scanner.
 *
 * No rule for preset-dictionary streams (FDICT, 78 20/3F/7D/BB/F9): they cannot be decoded without
 * the dictionary, so they can never verify, and "x " alone matched thousands of times per MB of
 * text (CSS, HTML) in the network benchmark.
 */

rule zlib_stream
{
    meta:
        format = "zlib"
        role = "candidate"
        bits = 14
        hot = "true"
    strings:
        // CMF 0x78 (deflate, 32 KiB window); FLG with FDICT clear and (CMF*256+FLG) % 31 == 0:
        // the four FLEVEL values every zlib writer emits
        $a = { 78 ( 01 | 5E | 9C | DA ) }
    condition:
        $a
}

rule b64_zlib_header
{
    meta:
        role = "hint"
        encoding = "base64"
        hot = "true"
    strings:
        // base64 of zlib's four common 2-byte headers, aligned at the start of a run only. The third
        // character also carries the first two bits of the deflate data, so it takes four values:
        // 78 01 -> eA[E-H], 78 5E -> eF[4-7], 78 9C -> eJ[w-z], 78 DA -> eN[o-r]. Written as
        // literals: libyara takes a 1-byte atom from the equivalent hex alternation (7x slower).
        $l1a = "eAE"
        $l1b = "eAF"
        $l1c = "eAG"
        $l1d = "eAH"
        $l5a = "eF4"
        $l5b = "eF5"
        $l5c = "eF6"
        $l5d = "eF7"
        $l6a = "eJw"
        $l6b = "eJx"
        $l6c = "eJy"
        $l6d = "eJz"
        $l9a = "eNo"
        $l9b = "eNp"
        $l9c = "eNq"
        $l9d = "eNr"
    condition:
        any of them
}
