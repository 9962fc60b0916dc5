"""Targets, board wrappers and the synthesis / place-and-route flow."""
