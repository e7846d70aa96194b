"""The HTTP translation service (FastAPI): settings, routes, cross-request batching, metrics and the web page.

Uses `model` only through `model.translator.Translator`.
"""
