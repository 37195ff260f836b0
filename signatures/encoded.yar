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

rule b64_encrypted_header
{
    meta:
        role = "hint"
        encoding = "base64"
    strings:
        // openssl enc -a, age and CMS/PKCS#7 (PEM, S/MIME) sent as base64; OpenPGP and age have armors of
        // their own, which the verifiers read
        $openssl = "Salted__" base64
        $age = "age-encryption.org/v1" base64
        $cms = "\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x03" base64
        $cms_auth = "\x06\x0b\x2a\x86\x48\x86\xf7\x0d\x01\x09\x10\x01\x17" base64
        // OpenPGP's first packets as GnuPG writes them (PKESK for RSA 2048/4096, SKESK v4 with its cipher
        // and S2K): four bytes or more, so that every alignment keeps atoms YARA can use
        $pgp_rsa2048 = "\x85\x01\x0c\x03" base64
        $pgp_rsa4096 = "\x85\x02\x0c\x03" base64
        $pgp_skesk = "\x8c\x0d\x04\x09\x03" base64
        // a token sent base64-encoded once more
        $fernet = "gAAAAA" base64
        $jwe = "eyJhbGciOi" base64
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
        $openssl = "53616c7465645f5f" nocase
    condition:
        any of them
}


rule b64_nested_layers
{
    meta:
        role = "hint"
        encoding = "base64"
    strings:
        // two (bzip2, xz, rar) or three (gzip, zip, 7z: b64_compressed_header has their second) to
        // eight base64 layers over a compressed header, each layer encoding the whole one below, so
        // the header's base64 starts every layer: the first characters of the outermost text,
        // computed by encoding each header's known bytes again and again
        $gzip3 = "U0RS"
        $gzip4 = "VTBS"
        $gzip5 = "VlRC"
        $gzip6 = "VmxS"
        $gzip7 = "Vm14"
        $gzip8 = "Vm0x"
        $zip3 = "VlVW"
        $zip4 = "VmxW"
        $bzip2_2 = "UWxw"
        $bzip2_3 = "VVd4"
        $bzip2_4 = "VlZk"
        $bzip2_5 = "Vmxa"
        $sevenzip3 = "VGpOeE9I"
        $sevenzip4 = "VkdwT2VF"
        $sevenzip5 = "Vmtkd1Qy"
        $sevenzip6 = "Vm10a2Qx"
        $sevenzip7 = "Vm0xMGEy"
        $xz2 = "L1RkNldG"
        $xz3 = "TDFSa05s"
        $xz4 = "VERGU2Ew"
        $xz5 = "VkVSR1Uy"
        $xz6 = "VmtWU1Ix"
        $xz7 = "Vm10V1Ux"
        $xz8 = "Vm0xMFYx"
        $rar2 = "VW1GeUlS"
        $rar3 = "VlcxR2VV"
        $rar4 = "VmxjeFIy"
        $rar5 = "Vm14amVG"
        $rar6 = "Vm0xNGFt"
        // base64 of base64 of ... converges: from about seven layers on, whatever is inside, the text
        // starts with this; a run nested deeper than [limits] max_depth is counted as a depth limit hit
        $deep = "Vm0w"
    condition:
        any of them
}
