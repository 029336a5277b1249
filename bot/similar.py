"""Possible duplicates of a new issue among the repository's open issues, by text similarity.

Only listed in the triage comment, never acted on: nothing is closed, labelled or linked
beyond the mention. Similarity is the cosine of L2-normalised sparse TF-IDF vectors, either the
trained classifier's (`TypeClassifier.vector`) or, when none is trained, `tfidf_vectorizer`'s,
built from the open issues themselves.

`MIN_SIMILARITY` was chosen by measurement (tests/test_duplicates.py: realistic near-duplicate
reports of one project against unrelated reports of the same project, many of them on
neighbouring topics) for `tfidf_vectorizer`; a different vectorizer needs its own measurement.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

from bot.github import RepoClient
from bot.text import strip_hidden

#: An L2-normalised sparse vector: feature index -> weight.
Vector = dict[int, float]
#: (title, body) -> its vector.
Vectorize = Callable[[str, str], Vector]

#: The lowest cosine similarity listed as a possible duplicate by default (measured for
#: `tfidf_vectorizer`; see tests/test_duplicates.py).
MIN_SIMILARITY = 0.30
#: Open issues read for comparison, newest first.
OPEN_ISSUES_LIMIT = 500
#: Characters of a body compared (the head: the report itself, not the 2,000-line log).
BODY_CHARS = 2000

_STOPWORDS = frozenset(
    """
    a about above after again all also am an and any are as at be because been before being
    below between both but by can could did do does doing don down during each few for from
    further had has have having he her here hers him his how i if in into is it its itself just
    me more most my no nor not now of off on once only or other our out over own same she should
    so some such than that the their them then there these they this those through to too under
    until up very was we were what when where which while who whom why will with would you your
    get got using use used when one two also still even like please thanks thank hi hello
    issue bug problem
    """.split()
)
_TOKEN = re.compile(r"[^\W_][\w'.-]*[^\W_]|[^\W_]", re.U)
_URL = re.compile(r"https?://([^\s/)\]>\"'`]+)[^\s)\]>\"'`]*", re.I)
_LONG = re.compile(r"\b[A-Za-z0-9_+/=-]{33,}\b")
_TEMPLATE_LINE = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t].*|\*\*[^*\n]{2,80}\*\*:?|_?no response_?"
    r"|[-*+][ \t]+\[[ xX]?\].*)[ \t]*$",
    re.M | re.I,
)


def _clean(text: str) -> str:
    text = _URL.sub(lambda m: f" {m.group(1)} ", text)
    return _LONG.sub(" ", text)


def _words(text: str) -> list[str]:
    return [
        w
        for w in (t.strip(".-'") for t in _TOKEN.findall(text.casefold()))
        if w and w not in _STOPWORDS
    ]


def _features(title: str, body: str) -> list[str]:
    """Character 3-5-grams of the words of the title and the head of the body (each word
    padded with spaces, as scikit-learn's `char_wb`).

    Template headings, `_No response_` and checklists are dropped first: every issue of a
    repository shares them, and they would make unrelated reports look alike. Character
    n-grams match "reload"/"reloading" and "sitemap"/"sitemap.xml"; measured against word
    unigrams + bigrams and against separate title/body blocks, they ranked and separated
    duplicates best (tests/test_duplicates.py)."""
    title = _clean(strip_hidden(title))
    body = _clean(_TEMPLATE_LINE.sub("", strip_hidden(body)[:BODY_CHARS]))
    grams: list[str] = []
    for word in _words(f"{title}\n{body}"):
        padded = f" {word} "
        for n in (3, 4, 5):
            grams.extend(padded[i : i + n] for i in range(max(1, len(padded) - n + 1)))
    return grams


def tfidf_vectorizer(corpus: Iterable[tuple[str, str]]) -> Vectorize:
    """A `Vectorize` with TF-IDF weights learnt from `corpus` ((title, body) pairs: the
    repository's open issues, and the new one), for when no classifier is trained.

    Sublinear term frequency and smoothed IDF (scikit-learn's `sublinear_tf=True`,
    `smooth_idf=True`), L2-normalised. The corpus's own vectors are computed once and reused.
    """
    docs = list(dict.fromkeys((t, b) for t, b in corpus))
    analysed = [_features(t, b) for t, b in docs]
    df: Counter[str] = Counter()
    for grams in analysed:
        df.update(set(grams))
    n_docs = len(docs)
    index = {gram: i for i, gram in enumerate(df)}

    def vectorize_grams(grams: list[str]) -> Vector:
        weights: Vector = {}
        for gram, count in Counter(grams).items():
            idf = math.log((1 + n_docs) / (1 + df[gram])) + 1.0
            # A gram the corpus never saw gets the next id: it matches only itself.
            weights[index.setdefault(gram, len(index))] = (1.0 + math.log(count)) * idf
        return _normalised(weights)

    cache = {doc: vectorize_grams(g) for doc, g in zip(docs, analysed, strict=True)}

    def vectorize(title: str, body: str) -> Vector:
        found = cache.get((title, body))
        return found if found is not None else vectorize_grams(_features(title, body))

    return vectorize


def _normalised(vector: Vector) -> Vector:
    norm = math.sqrt(math.fsum(v * v for v in vector.values()))
    return {k: v / norm for k, v in vector.items()} if norm else {}


def cosine(a: Vector, b: Vector) -> float:
    """The dot product of two L2-normalised sparse vectors."""
    if len(a) > len(b):
        a, b = b, a
    return math.fsum(v * b[k] for k, v in a.items() if k in b)


def candidates(
    issue_number: int,
    title: str,
    body: str,
    others: Sequence[tuple[int, str, str]],
    *,
    vectorize: Vectorize,
    top: int = 3,
    min_similarity: float = MIN_SIMILARITY,
) -> list[tuple[int, str, float]]:
    """The open issues most like this one: up to `top` (number, title, cosine similarity),
    most similar first, at least `min_similarity`, never the issue itself. `others` is
    `open_issues`' list of (number, title, body)."""
    query = vectorize(title, body)
    if not query:
        return []
    scored = []
    for number, other_title, other_body in others:
        if number == issue_number:
            continue
        similarity = cosine(query, vectorize(other_title, other_body))
        if similarity >= min_similarity:
            scored.append((number, other_title, similarity))
    scored.sort(key=lambda c: (-c[2], -c[0]))
    return scored[:top]


async def open_issues(
    client: RepoClient, *, limit: int = OPEN_ISSUES_LIMIT
) -> list[tuple[int, str, str]]:
    """The repository's open issues as (number, title, body), newest first, at most `limit`.

    `GET /repos/{owner}/{repo}/issues?state=open` pages of 100; the issues API lists pull
    requests too (with a `pull_request` key), and those are left out.
    """
    found: list[tuple[int, str, str]] = []
    if limit <= 0:
        return found
    pages = client.getiter(
        "/repos/{owner}/{repo}/issues{?state,sort,direction,per_page}",
        {"state": "open", "sort": "created", "direction": "desc", "per_page": 100},
    )
    try:
        async for item in pages:
            if item.get("pull_request"):
                continue
            title, body = str(item.get("title") or ""), str(item.get("body") or "")
            found.append((int(item["number"]), title, body))
            if len(found) >= limit:
                break
    finally:
        # Stop paging now (no request for the page after the cap), not when collected.
        aclose = getattr(pages, "aclose", None)
        if aclose is not None:
            await aclose()
    return found


async def duplicates_of(
    client: RepoClient | None,
    number: int,
    title: str,
    body: str,
    *,
    vectorize: Vectorize | None = None,
    limit: int = OPEN_ISSUES_LIMIT,
    top: int = 3,
    min_similarity: float = MIN_SIMILARITY,
) -> list[tuple[int, str, float]]:
    """`candidates` among the repository's open issues (`open_issues`); [] without a client
    (local mode, `DryRunForge`). Without `vectorize`, a `tfidf_vectorizer` of the open issues
    and this one; the vectors are computed in a worker thread (about a second for 500 issues
    on one core), off the event loop."""
    if client is None:
        return []
    others = await open_issues(client, limit=limit)
    if not others:
        return []

    def rank() -> list[tuple[int, str, float]]:
        vec = vectorize or tfidf_vectorizer([*((t, b) for _, t, b in others), (title, body)])
        return candidates(
            number, title, body, others, vectorize=vec, top=top, min_similarity=min_similarity
        )

    return await asyncio.to_thread(rank)
