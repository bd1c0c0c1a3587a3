"""A checkbox whose state reads the same on every terminal: ``[x]`` when on, ``[ ]`` when off.

Textual's default draws the mark in both states and tells them apart by colour alone, so on a
monochrome (or low-colour) terminal an unchecked box looks ticked.
"""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Checkbox


class PlainCheckbox(Checkbox):
    @property
    def _button(self) -> Content:
        return Content("[x]" if self.value else "[ ]")
