"""Looking inside the encoder: frequency responses, channel maps, what the codes know."""
