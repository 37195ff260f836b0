"""Detection: rule engines find candidates, verifiers prove them, the detector scores findings."""
