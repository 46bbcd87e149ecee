"""The ``presidio`` detector: names, locations and the other kinds that Microsoft Presidio's
analyzer finds with a spaCy model, found beside the builtin entities. Imported only when
``detector = "presidio"``: Presidio and spaCy take seconds to load."""

from __future__ import annotations

from pathlib import Path

import regex

from threadline.plugin import ConfigError
from threadline_pii import PresidioConfig
from threadline_pii.entities import Found

#: where a clause ends: a name or a place is told by the words around it, so a stream is
#: held back to the start of the clause under way
_CLAUSE_END = regex.compile(r"[.!?;:,\n]\s+")


class PresidioDetector:
    def __init__(self, config: PresidioConfig) -> None:
        try:
            import spacy.util
            from presidio_analyzer import AnalyzerEngine
            from presidio_analyzer.nlp_engine import NlpEngineProvider
        except ImportError:
            raise ConfigError(
                'detector = "presidio" needs Presidio: pip install "threadline-pii[presidio]"',
                key="middleware.pii.detector",
            ) from None
        if not (spacy.util.is_package(config.model) or Path(config.model).exists()):
            raise ConfigError(
                f"the spaCy model {config.model!r} is not installed: python -m spacy download {config.model}, "
                "or name another model, or a model's directory",
                key="middleware.pii.presidio.model",
            )
        models = [{"lang_code": config.language, "model_name": config.model}]
        engine = NlpEngineProvider(nlp_configuration={"nlp_engine_name": "spacy", "models": models}).create_engine()
        self.analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=[config.language])
        self.config = config

    def find(self, text: str, pos: int = 0) -> list[Found]:
        """What Presidio finds in ``text[pos:]``, of the kinds the config names, named in lower
        case (``PERSON``: ``person``)."""
        if pos >= len(text) or text[pos:].isspace():
            return []
        results = self.analyzer.analyze(
            text[pos:],
            language=self.config.language,
            entities=list(self.config.entities),
            score_threshold=self.config.score_threshold,
        )
        return [Found(result.entity_type.lower(), pos + result.start, pos + result.end) for result in results]

    def open_from(self, text: str, pos: int = 0) -> int:
        """The start of the clause under way."""
        return max((match.end() for match in _CLAUSE_END.finditer(text, pos)), default=pos)
