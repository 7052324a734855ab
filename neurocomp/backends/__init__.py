"""Backends: the integer emulator, the float reference simulator, and Lava."""
