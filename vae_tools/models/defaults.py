"""The models' hyperparameter defaults, importable without torch: the model constructors, the
training configuration and the estimators all read them from here."""

LATENT_DIM = 16
PHOTO_LATENT_DIM = 64  # photos hold more than strokes: 16 dimensions are not enough for their kinds
# The photo model's training budget on a CPU by default: 28-30 of its 30 epochs of CIFAR-10's 45,000
# training images fit in it on a 2-core server (61-100 s an epoch, by the day); a slower machine trains fewer.
PHOTO_CPU_MINUTES = 45.0
# Training picks the model from the images' histogram, as it picks the likelihood: continuous tones
# (photos, colour or grey) get the photo model, strokes and documents the conv model.
MODEL_CHOICE = "auto"
HIDDEN_DIM = 256
LIKELIHOOD = "bernoulli"  # a model built directly
# Training picks the likelihood from the images' histogram (vae_tools/data/pixel_histogram.py).
LIKELIHOOD_CHOICE = "auto"
ACTIVATION = "leaky_relu"
NOISE = "gaussian:0.5"  # the denoising model's corruption
# Bounds on a model's sizes, for training and for loading a run alike: far beyond any real run, small
# enough that building the model cannot exhaust memory (a latent_dim of 1e8 would try to allocate ~100 GB).
SIZE_LIMITS = {"latent_dim": 4096, "hidden_dim": 65536, "image_side": 4096, "width": 4096, "stages": 8}
# Images per forward pass where no gradient is kept (encoding, decoding, denoising).
INFERENCE_BATCH_SIZE = 512
# The fewest optimisation steps a run gets by default (TrainConfig.min_steps unset), at least 30 epochs.
# A fixed epoch count left small data sets undertrained (30 epochs of the 1,797 digits are 360 steps).
MIN_STEPS = 3000
# The photo model learns its codes from views of the images (a contrastive term), which keeps gaining
# long after the ELBO settles: on 10,000 CIFAR-10 photos 143 epochs (10,000 steps) propagated 2% labels
# to 41.2% against 35.8% after 43 (3,000 steps), clustering 0.376 against 0.334; CIFAR-10's 50,000
# get about this many in their 30 epochs. Its CPU budget still cuts a run that would not fit.
PHOTO_MIN_STEPS = 10_000
# The feature set label propagation prefers, and clustering keeps, for a model's codes unless the model
# says otherwise (BaseVAE.preferred_features): on strokes the codes and the pixels' components together.
PREFERRED_FEATURES = "latents+pixels"
