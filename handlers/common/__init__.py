"""Helpers shared by every bundled handler: error shapes, validation, progress, media fetching."""
