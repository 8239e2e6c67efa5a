"""Operator routes (admin keys only)."""
