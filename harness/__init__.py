"""Everything that runs: CLI, zoo, data, resize, metrics, checkpoints, measurement, training, store."""
