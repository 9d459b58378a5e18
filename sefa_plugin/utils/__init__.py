"""Small helpers shared across the package (image conversion and atomic output)."""
