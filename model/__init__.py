"""The recurrent NMT model: gates, encoder, attention, decoder, search, checkpoints, loading and the
translator interface (`translator`, `loading`).

Imports nothing else of carousel but `errors` and `fileio`: it does not know where its weights and text
come from. pyproject.toml's import contracts check this (`lint-imports`).
"""
