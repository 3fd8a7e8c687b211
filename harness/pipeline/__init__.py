"""The pipeline: plan a unit, run its stages (embed, train, attack, score), turn results into rows."""
