"""The paper's four style-transfer methods (section II), the reconstruction baseline and trained decoders, by name.

Each method analyses a style once (``analyse``) and applies the analysis to any number of contents
(``apply``); ``configs/method/<name>.yaml`` builds the method of that name.
"""

from jukestyle.errors import ConfigError
from jukestyle.methods.base import Identity, Method, MethodOutput, require_gradients
from jukestyle.methods.codebook import CodebookRestriction
from jukestyle.methods.decoder import TrainedDecoder
from jukestyle.methods.features import WCT, AdaIN
from jukestyle.methods.gram import LBFGS, GramOptimisation

METHODS: dict[str, type[Method]] = {
    method.name: method for method in (Identity, CodebookRestriction, GramOptimisation, AdaIN, WCT, TrainedDecoder)
}


def make_method(name: str, **options) -> Method:
    """A method by its name in ``METHODS`` (the names of configs/method/), with the given settings."""
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; methods: {', '.join(METHODS)}")
    try:
        return METHODS[name](**options)
    except TypeError as error:
        raise ConfigError(f"bad option for method {name!r}: {error}") from None


__all__ = [
    "LBFGS",
    "METHODS",
    "WCT",
    "AdaIN",
    "CodebookRestriction",
    "GramOptimisation",
    "Identity",
    "Method",
    "MethodOutput",
    "TrainedDecoder",
    "make_method",
    "require_gradients",
]
