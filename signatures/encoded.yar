/*
 * Hints for compressed headers wrapped in base64 or hex text (SIGNATURES.md §1.15).
 * A hint is never a finding: the content layer decodes the whole run around it and the
 * detector rescans the decoded bytes, so only verified members come out.
 */

rule b64_compressed_header
{
    meta:
        role = "hint"
        encoding = "base64"
    strings:
        // the base64 modifier yields all three alignments of each header
        $gzip = "\x1f\x8b\x08" base64
        $bzip2 = "BZh" base64
        $xz = "\xfd7zXZ\x00" base64
        $zstd = "\x28\xb5\x2f\xfd" base64
        $lz4 = "\x04\x22\x4d\x18" base64
        $zip = "PK\x03\x04" base64
        $sevenzip = "7z\xbc\xaf\x27\x1c" base64
        $rar = "Rar!\x1a\x07" base64
        $cab = "MSCF\x00\x00\x00\x00" base64
        $lzma = "\x5d\x00\x00\x80\x00" base64
        $dotnet = "\xec\xbd\x07\x60\x1c\x49" base64
        $tar_posix = "ustar\x0000" base64
        $tar_gnu = "ustar  \x00" base64
        // a second base64 layer over the base64 forms of gzip, zip and 7z
        $b64_gzip = "H4sI" base64
        $b64_zip = "UEsDB" base64
        $b64_7z = "N3q8ryc" base64
        $dotnet_final = "\xed\xbd\x07\x60\x1c\x49" base64
    condition:
        any of them
}

rule hex_compressed_header
{
    meta:
        role = "hint"
        encoding = "hex"
    strings:
        $gzip = "1f8b08" nocase
        $zlib1 = "7801" nocase
        $zlib5 = "785e" nocase
        $zlib6 = "789c" nocase
        $zlib9 = "78da" nocase
        $bzip2 = "425a68" nocase
        $xz = "fd377a585a00" nocase
        $zstd = "28b52ffd" nocase
        $lz4 = "04224d18" nocase
        $zip = "504b0304" nocase
        $sevenzip = "377abcaf271c" nocase
        $rar = "526172211a07" nocase
        $cab = "4d53434600000000" nocase
        $lzma = "5d00008000" nocase
        $tar = "7573746172" nocase
    condition:
        any of them
}
