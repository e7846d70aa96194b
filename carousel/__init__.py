"""The `carousel` command line: prepare, train, translate, evaluate, serve."""
