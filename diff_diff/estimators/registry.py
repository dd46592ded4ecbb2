"""The estimators of the library and what each supports, as data.

Every estimator class registers itself with :func:`register`. Its
:class:`Capabilities` say what data it takes, how its inference works and which
survey designs it accepts; :func:`check_supported` turns an unsupported
combination into one clear error, and the contract sweep
(``tests/contracts/test_estimator_sweep.py``) fits every registered estimator
under every design it claims - so a new estimator gets those checks by
registering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..inference.estimate import check_bootstrap_design
from ..survey.units import check_survey_design

DATA_KINDS = ("panel", "panel or cross-section")
INFERENCE_KINDS = ("influence", "regression")
BOOTSTRAP_KINDS = ("multiplier", "wild", None)


@dataclass(frozen=True)
class Capabilities:
    """What an estimator supports.

    Attributes
    ----------
    data : {"panel", "panel or cross-section"}
    inference : {"influence", "regression"}
        Influence values through the engine, or regression scores and bread
        (with the ``vcov_type`` menu).
    weight_types : tuple of str
        Survey weight types accepted (``pweight``, ``aweight``, ``fweight``).
    replicate : bool
        Replicate-weight designs (the engine refits the estimator per replicate).
    bootstrap : {"multiplier", "wild", None}
        ``n_bootstrap`` means the PSU multiplier bootstrap (with sup-t bands),
        or the wild cluster bootstrap of a regression contrast.
    event_study : bool
        Results carry ``event_study_effects`` and ``plot_event_study``.
    example : callable
        ``example() -> dict``: ``fit`` keywords (besides ``data`` and
        ``survey_design``) on :func:`diff_diff.datasets.example_panel`.
    example_settings : callable
        ``example_settings() -> dict``: constructor keywords that example needs
        (default none; e.g. a variance method the example panel supports).
    """

    data: str
    inference: str
    weight_types: tuple = ("pweight",)
    replicate: bool = True
    bootstrap: str | None = "multiplier"
    event_study: bool = False
    example: Callable[[], dict] = field(default=dict, repr=False, compare=False)
    example_settings: Callable[[], dict] = field(default=dict, repr=False, compare=False)

    def __post_init__(self):
        for name, value, allowed in (("data", self.data, DATA_KINDS),
                                     ("inference", self.inference, INFERENCE_KINDS),
                                     ("bootstrap", self.bootstrap, BOOTSTRAP_KINDS)):
            if value not in allowed:
                raise ValueError(f"Capabilities.{name} must be one of {list(allowed)}, "
                                 f"got {value!r}")


@dataclass(frozen=True)
class Entry:
    """A registered estimator: its class, short aliases and capabilities."""

    name: str
    cls: type
    aliases: tuple
    capabilities: Capabilities

    @property
    def public(self) -> bool:
        """Exported by the package (examples live in private modules such as ``_template``)."""
        return not self.cls.__module__.rsplit(".", 1)[-1].startswith("_")


REGISTRY: dict[str, Entry] = {}


def register(*, aliases: tuple = (), **capabilities):
    """Class decorator: add an estimator to :data:`REGISTRY` with its capabilities
    (also stored as the class attribute ``capabilities``)."""
    caps = Capabilities(**capabilities)

    def add(cls):
        REGISTRY[cls.__name__] = Entry(cls.__name__, cls, tuple(aliases), caps)
        cls.capabilities = caps
        return cls
    return add


def registered() -> list[Entry]:
    """Every registered estimator, by name."""
    return [REGISTRY[name] for name in sorted(REGISTRY)]


def check_supported(estimator, survey_design) -> None:
    """Refuse a survey design or setting the estimator does not support, with one
    kind of message (the weight-type message names the accepted types, e.g. ``pweight``)."""
    caps, name = type(estimator).capabilities, type(estimator).__name__
    if survey_design is None:
        return
    check_survey_design(survey_design, name, caps.weight_types, caps.replicate)
    if caps.bootstrap == "multiplier":
        check_bootstrap_design(estimator.n_bootstrap, bool(survey_design.replicate_weights), name)
