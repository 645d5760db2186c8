"""Layer families, one module each."""
