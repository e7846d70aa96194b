"""The HTTP translation service (FastAPI): settings, routes, cross-request batching, metrics and the web page.

Uses `model` only through its interface (`model.translator`, `model.loading`); routes text with
`routing` and reads and writes files with `formats`.
"""
