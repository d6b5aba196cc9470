"""Defaults of label propagation's choices, importable without torch or scikit-learn (the command
line's help shows them)."""

FEATURE_SETS = ("auto", "latents", "latents+pixels", "pixels")
REDUCE = "auto"  # UMAP map up to UMAP_LIMIT samples (vae_tools/latent/reducers.py), the features beyond
FEATURES = "auto"
# What auto keeps unless another set is clearly better: a model's own preference (its
# preferred_features), declared with the models, which sit below this layer.
from vae_tools.models.defaults import PREFERRED_FEATURES  # noqa: E402, F401 (re-exported)
# How a refinement round sharpens the latents with the labels it has (vae_tools/semi_supervised.py):
# "encoder" trains the encoder and a linear head on the propagated labels alone (no decoder, bf16 where
# the CPU has it), judged by REFINEMENT_FOLDS["encoder"] fold lines whose latents are then pooled as
# maps, so a round costs two encoder trainings; "vae" fine-tunes the whole VAE on ELBO + labels and
# re-maps with UMAP, judged by JUDGE_FOLDS folds plus a full version (five fine-tunings a round). On
# MNIST 70k at 2% "encoder" reached 98.33% in 114 s a seed, "vae" 98.53% in 1,722 s (3 seeds each,
# bench/results/label_propagation_balanced.json and label_propagation.json).
REFINEMENTS = ("encoder", "vae")
REFINEMENT = "encoder"
REFINE_ROUNDS = 1  # with "vae" the second round was dropped on every MNIST seed, after 470-1,300 s
REFINE_EPOCHS = {"encoder": 3, "vae": 4}  # vae: 2 -> 4 lifted 2% MNIST from 98.31% to 98.53% on the weakest seed
# What label-propagate trades for time: a name for a set of the choices above.
BUDGETS = {
    "fast": {"refine_rounds": 0},
    "balanced": {"refinement": "encoder", "refine_rounds": REFINE_ROUNDS},
    "best": {"refinement": "vae", "refine_rounds": 2},
}
BUDGET = "balanced"
BUDGET_HELP = {
    "fast": "propagation over the chosen features only, no refinement (on MNIST 70k at 2%: 98.0%)",
    "balanced": "one refinement round that trains the encoder on the propagated labels, kept only if the "
                "labels held back from it say it helped (98.3%, about 2 minutes on a 2-core CPU)",
    "best": "up to two rounds that fine-tune the whole VAE on ELBO + labels and re-map it (98.5% on MNIST, "
            "15 times the time; it can gain where the encoder alone cannot)",
}
# A round is judged by cross-fitting: the given labels are split into JUDGE_FOLDS folds, and for
# each fold a copy of the round runs without that fold's labels and is scored on them, so every given
# label judges it. One held-back quarter was too coarse: on MNIST at 2% (350 held back) rounds that
# raised accuracy by 0.44 points tied on it and were dropped (bench/results/label_propagation.json).
JUDGE_FOLDS = 4
# "encoder" rounds pool their fold lines' latents for the final propagation instead of fine-tuning a
# full version, so each fold line is a training the result uses: two halves of the labels judge it.
REFINEMENT_FOLDS = {"encoder": 2, "vae": JUDGE_FOLDS}
# Below this many given (judging) labels a single lucky label is worth more than a point of accuracy,
# more than a refinement round moves it (digits, 10 label draws: -0.64 to +0.82 points), so a round
# cannot be judged: with 23 held back one draw of the ten kept two rounds on +1 labels each and ended
# 0.64 points below round 0 (bench/refinement_rounds.py). Refinement then says so and is skipped.
MIN_JUDGING_LABELS = 100
CV_FOLDS = 5
# The feature sets are ranked on every labelled sample plus unlabelled ones up to this many samples:
# a UMAP map per candidate over all of MNIST's 70,000 took a minute each here.
RANKING_SAMPLES = 20_000
# The UMAP map's seed alone moves a result: for the same labels single maps differed by 0.4 points on
# digits and 0.9 on Kuzushiji-MNIST (10,000 images), 0.1 on MNIST (70,000). Averaging the label
# distributions of several maps gives the single maps' mean accuracy without that lottery
# (bench/map_ensemble.py). Each map costs a UMAP run, so "auto" averages ENSEMBLE_MAPS maps up to
# ENSEMBLE_LIMIT samples, where the lottery is large and a map takes seconds, and uses one beyond.
MAPS = "auto"
ENSEMBLE_MAPS = 5
ENSEMBLE_LIMIT = 20_000
UMAP_BACKENDS = ("umap-learn", "cuml")
UMAP_BACKEND = "umap-learn"
PROPAGATION_METHODS = ("spreading", "centroids", "knn")
PROPAGATION_METHOD = "spreading"
NEIGHBORS = 15  # per sample, in the propagation graph and in UMAP's maps
GRAPHS = ("umap", "knn")
GRAPH = "umap"
CLUSTER_METHODS = ("kmeans", "gmm", "hdbscan")
CLUSTER_METHOD = "kmeans"
CLUSTERS = 10
CLUSTER_REDUCE = "umap"
MIN_DIST = 0.1  # UMAP's for the 2-D pictures (maps for graphs use 0)
