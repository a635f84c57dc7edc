"""RouterDC (Chen et al., NeurIPS 2024): query encoder + candidate embeddings, dual contrastive loss."""
