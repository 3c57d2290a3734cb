"""Feast: registry, online store materialisation, point-in-time training sets."""
