"""Rendering model, direction and Space cards from the templates in ``hub_cards/``.

Everything a card shows that comes from a file or a user (labels, repo ids, file names) is text: the
``md`` filter escapes Markdown and HTML so a label such as ``<img src=...>`` renders as those characters,
and repo ids are validated with ``huggingface_hub`` before they enter a link or a code snippet.
"""

from __future__ import annotations

import html
import logging
import re
from importlib import resources

import jinja2
from huggingface_hub import ModelCard, ModelCardData

from .hub import LIBRARY_NAME, check_repo_id

logger = logging.getLogger(__name__)

# Characters with a meaning inside a Markdown line (emphasis, code, links, table cells, strike-through),
# backslash-escaped by `escape_markdown`; the others (`#`, `-`, `+` ...) only act at the start of a line.
_MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]|~])")


def escape_markdown(value: object) -> str:
    """Render `value` as inert text in Markdown: HTML escaped, Markdown punctuation escaped, one line.

    Example:

    >>> escape_markdown("<img src=x> **bold** | cell\\nnext")
    '&lt;img src=x&gt; \\\\*\\\\*bold\\\\*\\\\* \\\\| cell next'
    """
    text = " ".join(str(value).split())  # newlines and tabs would end a table row or a heading
    return _MARKDOWN_SPECIALS.sub(r"\\\1", html.escape(text, quote=True))


def load_template(name: str) -> str:
    """The text of a card template shipped in ``sefa_plugin.hub_cards`` (e.g. ``"model_card.md"``)."""
    try:
        return resources.files("sefa_plugin.hub_cards").joinpath(name).read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError) as err:
        raise FileNotFoundError(f"Card template {name!r} is missing from sefa_plugin.hub_cards.") from err


def _safe_base_model(base_model: str | None) -> str | None:
    """A base model id from metadata (possibly a crafted file): kept only if it is a valid Hub repo id."""
    if base_model is None:
        return None
    try:
        return check_repo_id(base_model, "base_model")
    except ValueError as err:
        logger.warning("Not linking the base model on the card: %s", err)
        return None


def render_card(
    template_name: str, *, base_model: str | None, tags: list[str], repo_id: str | None = None, **context: object
) -> ModelCard:
    """Render a card with Hub metadata (``library_name`` is always ``sefa_plugin``).

    Args:
        template_name: File name in ``hub_cards/``.
        base_model: The Hub id of the model the card derives from (or None); an invalid id is left out.
        tags: Hub tags.
        repo_id: The repo the card is for (shown in its code snippet), validated as a Hub repo id.
        **context: Values for the template; templates pass any text from files or users through ``| md``.

    Raises:
        ValueError: `repo_id` is not a valid Hub repo id.
    """
    if repo_id is not None:
        repo_id = check_repo_id(repo_id, "repo_id")
    base_model = _safe_base_model(base_model)
    data = ModelCardData(base_model=base_model, library_name=LIBRARY_NAME, tags=tags)
    # Render with StrictUndefined first so a missing value fails loudly instead of printing nothing.
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters["md"] = escape_markdown
    template = env.from_string(load_template(template_name))
    text = template.render(card_data=data.to_yaml(), base_model=base_model, repo_id=repo_id, **context)
    return ModelCard(text)
