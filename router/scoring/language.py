"""Best-effort language of a customer turn, for scoring calls that do not say it (the worker passes the
contact's own language; ``router score`` and the evaluation of mixed sets may not)."""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+", re.UNICODE)
# Small stop-word lists: enough to tell these languages apart on a sentence; "en" when nothing matches.
_STOP_WORDS: dict[str, str] = {
    "en": "the and is are was you my i to of it that this not have for with what be me your",
    "it": "il la che di non è un una per sono mi ho con ma gli le del della questo anche ti",
    "ro": "și si nu de la că ca în in este sunt pe un o cu mai am ce să sa care din pentru",
    "fi": "ja on ei se että en ole mitä minä sinä hän oli kun niin mutta tämä ovat olen sitä",
    "de": "und ist nicht der die das ich du ein eine zu mit es sie wir auf für sich auch",
    "es": "el la que de no es en y un una por los las con para me mi lo pero está muy",
    "fr": "le la les et est je ne pas un une de des que qui pour dans ce il elle avec",
    "pt": "o a que de não é um uma para com os as do da em eu meu minha mas muito",
    "pl": "i w nie na się z że to jest do jak mi mnie moja mój już ale czy co po",
    "nl": "de het een en van ik je niet dat is op te met voor mijn maar zijn heb er",
}
_STOP: dict[str, frozenset[str]] = {lang: frozenset(words.split()) for lang, words in _STOP_WORDS.items()}
# word -> the languages it is a stop word of, so that one pass over the words counts every language's votes
_STOP_LANGS: dict[str, tuple[str, ...]] = {
    w: tuple(lang for lang, stop in _STOP.items() if w in stop) for stop in _STOP.values() for w in stop
}


def detect_language(text: str) -> str:
    """Greek by script, else stop-word votes (ties go to the earlier language); "en" by default."""
    if not text.isascii() and sum(1 for ch in text if "\u0370" <= ch <= "\u03ff") >= 3:
        return "el"
    votes: dict[str, int] = {}
    for w in _WORD.findall(text):
        for lang in _STOP_LANGS.get(w.lower(), ()):
            votes[lang] = votes.get(lang, 0) + 1
    best, best_n = "en", 0
    for lang in _STOP:
        n = votes.get(lang, 0)
        if n > best_n:
            best, best_n = lang, n
    return best
