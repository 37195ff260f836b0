/*
 * Candidate rules for data encrypted by a library or its command-line tool (issue "Compress or encrypt"):
 * OpenSSL enc, OpenPGP (binary packets and ASCII armor), age (binary and armored), Fernet tokens, CMS/PKCS#7
 * EnvelopedData, JWE compact serialization. None of them decompresses: the verifiers in
 * sensor/detect/verifiers/ prove the structure (packet walks, stanzas, lengths, OIDs, CRC-24).
 */

rule openssl_salted
{
    meta:
        format = "openssl"
        role = "candidate"
        bits = 64
    strings:
        $a = "Salted__"
    condition:
        $a
}

rule openpgp_esk
{
    meta:
        format = "openpgp"
        role = "candidate"
        bits = 32
    strings:
        // a message's first packet as implementations write it, with its length and version fixed so that
        // YARA has atoms of 3-4 bytes (a generic "84 ?? 03" has one-byte atoms and halved the scan speed):
        // PKESK v3 for RSA 2048, 3072 and 4096 and for Curve25519 ECDH, old and new packet formats; SKESK v4
        // with an iterated and salted S2K. The verifier walks every packet to the end of the encrypted data.
        // An RSA session key's MPI is a byte shorter once in 256 encryptions (its top bits are zero): both
        // lengths are listed.
        $rsa2048 = { 85 01 ( 0B | 0C ) 03 }
        $rsa3072 = { 85 01 ( 8B | 8C ) 03 }
        $rsa4096 = { 85 02 ( 0B | 0C ) 03 }
        $ecdh = { 84 5E 03 }
        $rsa2048_new = { C1 C0 ( 4B | 4C ) 03 }
        $rsa3072_new = { C1 C0 ( CB | CC ) 03 }
        $rsa4096_new = { C1 C1 ( 4B | 4C ) 03 }
        $ecdh_new = { C1 5E 03 }
        $skesk = { 8C 0D 04 }
        $skesk_new = { C3 0D 04 }
    condition:
        any of them
}

rule openpgp_armor
{
    meta:
        format = "openpgp"
        role = "candidate"
        bits = 64
    strings:
        $a = "-----BEGIN PGP MESSAGE-----"
    condition:
        $a
}

rule age_header
{
    meta:
        format = "age"
        role = "candidate"
        bits = 64
    strings:
        $bin = "age-encryption.org/v1\n"
        $armor = "-----BEGIN AGE ENCRYPTED FILE-----"
    condition:
        any of them
}

rule fernet_token
{
    meta:
        format = "fernet"
        role = "candidate"
        bits = 48
    strings:
        // version 0x80 and a timestamp's high bytes (zero until 2106) in base64url
        $a = "gAAAAA"
    condition:
        $a
}

rule cms_enveloped
{
    meta:
        format = "cms"
        role = "candidate"
        bits = 64
    strings:
        // contentType id-envelopedData (1.2.840.113549.1.7.3) or id-ct-authEnvelopedData (...9.16.1.23); the
        // verifier finds the outer SEQUENCE's tag and length just before it (DER, or BER indefinite)
        $env = { 06 09 2A 86 48 86 F7 0D 01 07 03 }
        $auth = { 06 0B 2A 86 48 86 F7 0D 01 09 10 01 17 }
    condition:
        any of them
}

rule jwe_compact
{
    meta:
        format = "jwe"
        role = "candidate"
        bits = 60
    strings:
        // base64url of the protected header's first member: {"alg":" {"enc":" {"typ":" {"kid":" {"cty":" {"zip":"
        $alg = "eyJhbGciOi"
        $enc = "eyJlbmMiOi"
        $typ = "eyJ0eXAiOi"
        $kid = "eyJraWQiOi"
        $cty = "eyJjdHkiOi"
        $zip = "eyJ6aXAiOi"
    condition:
        any of them
}
