/*
 * Candidate rules for archives: zip (with its encryption signals), 7z, rar4/5, cab, tar.
 * Structure beyond the magic is verified in Python (sensor/detect/verifiers/).
 */
rule zip_local
{
    meta:
        format = "zip"
        role = "candidate"
        bits = 32
    strings:
        // local file header; "version needed" is soft, so only the magic is in the pattern
        $a = { 50 4B 03 04 }
    condition:
        $a
}

rule zip_encrypted
{
    meta:
        format = "zip"
        role = "flag"
        bits = 33
    strings:
        $a = { 50 4B 03 04 }
    condition:
        // general purpose flag bit 0: traditional or strong encryption
        for any i in (1..#a) : ( uint16(@a[i] + 6) & 1 == 1 )
}

rule zip_aes
{
    meta:
        format = "zip"
        role = "flag"
        bits = 65
    strings:
        $a = { 50 4B 03 04 }
    condition:
        // WinZip AES: method 99 and the 0x9901 extra record first in the extra field
        for any i in (1..#a) : ( uint16(@a[i] + 8) == 99 and
                                 uint16(@a[i] + 30 + uint16(@a[i] + 26)) == 0x9901 )
}

rule sevenzip
{
    meta:
        format = "7z"
        role = "candidate"
        bits = 62
    strings:
        // the StartHeaderCRC (over NextHeaderOffset, NextHeaderSize, NextHeaderCRC) is the verifier's to
        // check: see xz in compression.yar for why the hash module is not imported
        $a = { 37 7A BC AF 27 1C 00 ( 02 | 03 | 04 ) }
    condition:
        $a
}

rule rar4
{
    meta:
        format = "rar"
        role = "candidate"
        bits = 56
    strings:
        $a = { 52 61 72 21 1A 07 00 }
    condition:
        $a
}

rule rar5
{
    meta:
        format = "rar"
        role = "candidate"
        bits = 64
    strings:
        $a = { 52 61 72 21 1A 07 01 00 }
    condition:
        $a
}

rule cab
{
    meta:
        format = "cab"
        role = "candidate"
        bits = 100
    strings:
        $a = { 4D 53 43 46 00 00 00 00 }
    condition:
        for any i in (1..#a) : ( uint32(@a[i] + 12) == 0 and uint8(@a[i] + 24) == 3 and
                                 uint8(@a[i] + 25) == 1 )
}

rule tar_ustar
{
    meta:
        format = "tar"
        role = "candidate"
        bits = 48
        adjust = -257   // the magic sits at offset 257 of the 512-byte header
    strings:
        // POSIX "ustar\0" + version "00", or GNU "ustar  \0"
        $a = { 75 73 74 61 72 ( 00 30 30 | 20 20 00 ) }
    condition:
        $a
}
