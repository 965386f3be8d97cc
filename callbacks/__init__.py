"""Lightning callbacks: the result writer, the W&B media logger, checkpointing, the channel-map writer."""
