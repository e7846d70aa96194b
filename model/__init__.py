"""The recurrent NMT model: cells, encoder, attention, decoder, search, checkpoints and the translator interface.

May import `data` (subwords, normalisation); never `training` or `service`.
"""
