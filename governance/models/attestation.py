"""Models of the attestation capability."""
