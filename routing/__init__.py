"""Which model translates a text: the shipped model directories and their language pairs (`shipped`),
the domain classifier of models/domains.json (`domains`) and how it is fitted from a training mix
(`fitting`), and the default translator of a language pair that sends each text to its domain's model
(`translator`). Torch-free except `translator`, which loads models."""
