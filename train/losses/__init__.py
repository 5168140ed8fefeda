"""Training losses, one module each: SNCA over a memory, cross entropy, triplet, contrastive."""
