"""Privacy: redaction before storage, pseudonymous keys, erasure and retention."""
