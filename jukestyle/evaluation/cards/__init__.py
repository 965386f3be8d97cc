"""The cards: what the project ships (the bundled model, trained decoders, the transfer decoder), measured."""
