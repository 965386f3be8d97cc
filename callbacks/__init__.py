"""Lightning callbacks: the result writer and the W&B media logger."""
