"""Watermark profiles: an account's own marks, kept so that removal can invert their blend."""
