/*
 * DLP content rule (example): your own project code names and document markings. Edit the strings.
 */

rule internal_marking
{
    meta:
        description = "Document markings and a project code name (replace with yours)"
    strings:
        $m1 = "COMPANY CONFIDENTIAL" nocase
        $m2 = "INTERNAL USE ONLY" nocase
        $code = "PROJECT ORION" nocase
    condition:
        any of them
}
