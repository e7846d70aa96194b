"""The Debian parallel corpus: Spanish–English text extracted from pinned Debian packages.

Depends only on the standard library, polib, lxml and `carousel.data`; imports nothing from model/training/service.
"""
