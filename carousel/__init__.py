"""carousel: recurrent neural machine translation.

This folder holds the package root and the command line (`cli`, `commands/`), with the two helpers every
layer uses (`errors`, `fileio`). The product's concepts install beside it as subpackages: `model`,
`data`, `training`, `evaluation`, `routing`, `formats` and `service` (see the README's layout section).
"""
