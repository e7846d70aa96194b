"""Parallel corpora: the Bible builder (SWORD modules), the Debian and gettext-catalog importers, user
corpus import, cleaning, training mixes, splits and SentencePiece subwords.

May import `model` (its special token ids, source normaliser and sentence splitter, so a corpus is cut
and encoded exactly as the model reads text); never `training`, `evaluation`, `routing`, `formats` or
`service`. pyproject.toml's import contracts check this (`lint-imports`).
"""
