"""Training: typed config, training examples, token batching, the loop, distributed processes,
validation, resumable state and model export.

May import `data` and `model`; never `service`, `evaluation`, `routing` or `formats`.
"""
