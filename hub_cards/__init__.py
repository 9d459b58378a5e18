"""Jinja/Markdown templates for model, direction and Space cards (shipped as ``sefa_plugin.hub_cards``)."""
