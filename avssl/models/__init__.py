"""Encoders and heads, and adapters for the official checkpoints (no training logic)."""
