"""The anomaly scores' names and defaults, importable without torch (the command line's help shows them)."""

# Robust to simple images and to complex normal ones (see scores.py); the best one-vs-rest AUROC measured
# on MNIST and Kuzushiji-MNIST (bench/oneclass.py, bench/generalise.py).
SCORE = "adjusted"
SAMPLES = 16  # Monte Carlo draws of z per image for elbo, iwae and complexity
SCORING_BATCH_SIZE = 256  # smaller than for encoding: each image is decoded SAMPLES times per pass
