"""Fine-tuned classification checkpoints: the feature extractor up to the head's input, and the head."""
