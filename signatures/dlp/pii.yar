/*
 * DLP content rules (examples) for personal data. Patterns only: YARA cannot run a Luhn check or an SSN
 * area-number table, so each rule wants several hits in the member's head before it speaks.
 */

rule ssn_like
{
    meta:
        description = "US social security number pattern (ddd-dd-dddd), three or more"
    strings:
        $ssn = /\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b/
    condition:
        #ssn >= 3
}

rule payment_card_like
{
    meta:
        description = "16-digit card numbers starting like Visa/Mastercard, grouped by 4 or not, five or more"
    strings:
        $grouped = /\b(4[0-9]{3}|5[1-5][0-9]{2})[ -][0-9]{4}[ -][0-9]{4}[ -][0-9]{4}\b/
        $plain = /\b(4[0-9]{15}|5[1-5][0-9]{14})\b/
    condition:
        #grouped + #plain >= 5
}
