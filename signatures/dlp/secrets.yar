/*
 * DLP content rules (examples): what a staged member holds. Run with `stagewatch scan --rules signatures/dlp`
 * (or copy beside your own). A content rule has no `role` meta: it runs over the decompressed head of every
 * verified member ([limits] content_head, 1 MiB) and a match lands in stagewatch.inner.rules and raises the
 * finding's severity. Keep conditions counting several hits: one stray pattern in 1 MiB of text is noise.
 */

rule private_key_pem
{
    meta:
        description = "A PEM private key (RSA, EC, DSA, OpenSSH, PKCS#8, encrypted PKCS#8)"
    strings:
        $rsa = "-----BEGIN RSA PRIVATE KEY-----"
        $ec = "-----BEGIN EC PRIVATE KEY-----"
        $dsa = "-----BEGIN DSA PRIVATE KEY-----"
        $ssh = "-----BEGIN OPENSSH PRIVATE KEY-----"
        $p8 = "-----BEGIN PRIVATE KEY-----"
        $p8e = "-----BEGIN ENCRYPTED PRIVATE KEY-----"
    condition:
        any of them
}

rule aws_access_key
{
    meta:
        description = "AWS access key ids (AKIA/ASIA + 16 upper-case base32 characters)"
    strings:
        $id = /\b(AKIA|ASIA)[A-Z2-7]{16}\b/
    condition:
        $id
}
