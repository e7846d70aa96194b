"""Training: typed config, token batching, the loop, validation, resumable state and model export.

May import `data` and `model`; never `service`.
"""
