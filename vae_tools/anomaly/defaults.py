"""The anomaly scores' names and defaults, importable without torch (the command line's help shows them)."""

AUTO = "auto"
# For a photo model, rotation+knn where its rotation head tells the reference images' turns apart,
# knn where it cannot (one-vs-rest on colour photos: bench/photos.py); for the conv model adjusted:
# robust to simple images and to complex normal ones (see scores.py), the best one-vs-rest AUROC
# measured on MNIST and Kuzushiji-MNIST (bench/oneclass.py, bench/generalise.py).
SCORE = AUTO
AUTO_HELP = ("for a photo model rotation+knn, or knn where its rotation head cannot tell the reference images' "
             "turns apart; adjusted for other models (the choice and why are in metrics.json)")
PHOTO_SCORE, PHOTO_FALLBACK_SCORE, FALLBACK_SCORE = "rotation+knn", "knn", "adjusted"
# A head at chance adds only noise to the sum. Its mean -log p(turn) on the reference images, as a share
# of chance's (log of the number of turns), was 18-89% on CIFAR-10's classes after 10 epochs and about
# 100% on rotation-free textures (tests/test_rotation_score.py).
ROTATION_KNOWN = 0.95
SAMPLES = 16  # Monte Carlo draws of z per image for elbo, iwae and complexity
SCORING_BATCH_SIZE = 256  # smaller than for encoding: each image is decoded SAMPLES times per pass
# Training keeps the scores' quantities for a seeded sample of this many training images (all of them
# when fewer): the normal images a new image is compared with (anomaly/reference.py).
REFERENCE_IMAGES = 5000
