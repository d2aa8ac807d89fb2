"""The NEAT engine: pure functions over immutable genomes, every draw from an explicit Generator."""
