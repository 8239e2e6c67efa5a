"""Operator routes under /admin (admin keys only)."""
