"""Measuring and choosing by quality: sacreBLEU scoring of a model on a corpus split (`scoring`),
decoding settings swept on validation data (`tuning`), and the per-sentence confidence fitted and
measured on held-out data (`calibration`). Used by `carousel evaluate|tune|calibrate` and the benchmarks."""
