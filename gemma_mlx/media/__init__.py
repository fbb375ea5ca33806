"""Media input: images (and, next, video frames) to model tensors."""
