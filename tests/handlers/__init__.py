"""Tests for the bundled RunPod handlers."""
