"""Amaranth generators: one stream component per IR layer kind, and the pipeline top."""
