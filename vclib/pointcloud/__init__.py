"""Project 5: 3-D deep learning. Representations, PointNet, DGCNN, and zero-shot classification of
point clouds with a CLIP-style model (PointCLIP)."""
