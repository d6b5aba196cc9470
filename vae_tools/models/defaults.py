"""The models' hyperparameter defaults, importable without torch: the model constructors, the
training configuration and the estimators all read them from here."""

LATENT_DIM = 16
HIDDEN_DIM = 256
LIKELIHOOD = "bernoulli"  # a model built directly
# Training picks the likelihood from the images' histogram (vae_tools/data/pixel_histogram.py).
LIKELIHOOD_CHOICE = "auto"
ACTIVATION = "leaky_relu"
NOISE = "gaussian:0.5"  # the denoising model's corruption
