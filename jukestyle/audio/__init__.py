"""Audio in and out: files, loudness, FluidSynth rendering, and the plans of the rendered corpora."""
