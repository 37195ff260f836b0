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
        bits = 24
    strings:
        // a message's first packet: PKESK (tag 1) v3/v6 or SKESK (tag 3) v4/v5/v6, old or new packet format;
        // the verifier walks every packet to the end of the encrypted data packet
        // PKESK v3: version 3, an 8-byte key id, a public-key algorithm (RSA, Elgamal, ECDH, X25519, X448)
        $pk_old1 = { 84 ?? 03 [8] ( 01 | 02 | 10 | 12 | 19 | 1A ) }
        $pk_old2 = { 85 ?? ?? 03 [8] ( 01 | 02 | 10 | 12 | 19 | 1A ) }
        $pk_new1 = { C1 ?? 03 [8] ( 01 | 02 | 10 | 12 | 19 | 1A ) }
        $pk_new2 = { C1 ( C0 | C1 | C2 | C3 | C4 | C5 | C6 | C7 ) ?? 03 [8] ( 01 | 02 | 10 | 12 | 19 | 1A ) }
        $sk_old = { 8C ( 0D | 0E | 0F | 10 | 11 | 12 | 13 | 14 | 15 | 16 | 17 | 18 | 19 | 1A | 1B | 1C | 1D | 1E ) 04 ( 07 | 08 | 09 | 0A | 0B | 0C | 0D ) ( 00 | 01 | 03 | 04 ) }
        $sk_new = { C3 ?? ( 04 | 05 | 06 ) ( 07 | 08 | 09 | 0A | 0B | 0C | 0D ) }
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
