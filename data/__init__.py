"""Parallel corpora: the Bible builder (SWORD modules), user corpus import, cleaning, splits and SentencePiece subwords.

Imports nothing from `model`, `training` or `service`.
"""
