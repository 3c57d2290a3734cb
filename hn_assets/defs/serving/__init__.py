"""Serving as assets: the champion's Bento, built offline, and its smoke check against a live server."""
