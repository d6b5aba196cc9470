"""Steps that turn data and trained VAEs into files (embeddings, reports), and the ``vaetools`` CLI."""
