"""Numeric: NumPy code generation, gradient checks, training and data."""
