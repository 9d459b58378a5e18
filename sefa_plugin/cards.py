"""Rendering model, direction and Space cards from the templates in ``hub_cards/``."""

from __future__ import annotations

from importlib import resources

import jinja2
from huggingface_hub import ModelCard, ModelCardData

from .hub import LIBRARY_NAME


def load_template(name: str) -> str:
    """The text of a card template shipped in ``sefa_plugin.hub_cards`` (e.g. ``"model_card.md"``)."""
    try:
        return resources.files("sefa_plugin.hub_cards").joinpath(name).read_text(encoding="utf-8")
    except (FileNotFoundError, ModuleNotFoundError) as err:
        raise FileNotFoundError(f"Card template {name!r} is missing from sefa_plugin.hub_cards.") from err


def render_card(template_name: str, *, base_model: str | None, tags: list[str], **context: object) -> ModelCard:
    """Render a card with Hub metadata (``library_name`` is always ``sefa_plugin``).

    Args:
        template_name: File name in ``hub_cards/``.
        base_model: The Hub id of the model the card derives from (or None).
        tags: Hub tags.
        **context: Values for the template.
    """
    data = ModelCardData(base_model=base_model, library_name=LIBRARY_NAME, tags=tags)
    # Render with StrictUndefined first so a missing value fails loudly instead of printing nothing.
    template = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(load_template(template_name))
    text = template.render(card_data=data.to_yaml(), base_model=base_model, **context)
    return ModelCard(text)
