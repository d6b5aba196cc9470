"""The anomaly scores' names and defaults, importable without torch (the CLI's --help shows them)."""

SCORES = ("complexity", "iwae", "elbo", "recon", "kl", "latent")
SCORE = "complexity"  # robust to simple images (see scores.py); the best one-vs-rest AUROC measured
SAMPLES = 16  # Monte Carlo draws of z per image for elbo, iwae and complexity
