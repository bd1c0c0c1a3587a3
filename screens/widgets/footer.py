"""Textual's footer, rebuilt only when what it shows changes, and without its leak.

Textual's ``Footer`` recomposes (a dozen new key widgets) on every binding refresh, which in this
console means on every cursor move. That churn was most of the console's cyclic garbage, and the
collector's passes over it stalled key presses (benchmarks/console_bench.py). Here a rebuild
happens only when the shown keys, their labels or their enabled state differ from the last one.

Each rebuild also binds its new keys to the footer's ``compact`` reactive, and Textual keeps a
watcher entry per key until ``compact`` changes, which here it never does
(Textualize/textual#6666, open in Textual 8.2): the detached keys piled up by the thousand.
Entries of detached keys are pruned after each rebuild.

Textual's footer also cuts the keys that do not fit at the right edge, silently. Here, when they
do not fit, the footer shows the ones that do and then says how many more there are and where
to see them (``?``), so no binding disappears without a word.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer
from textual.widgets._footer import FooterKey, FooterLabel

MORE_ROOM = 22  # "+NN more: ? lists all" and its padding


class LeanFooter(Footer):
    _shown: Any = None

    def _signature(self) -> Any:
        if not self._bindings_ready:
            return None
        shown = tuple(
            (binding.key, binding.action, binding.description, enabled, tooltip)
            for (_node, binding, enabled, tooltip) in self.screen.active_bindings.values()
            if binding.show
        )
        return shown, self.compact, self.show_command_palette, self._width()

    def _width(self) -> int:
        return self.size.width or self.app.size.width

    def on_resize(self) -> None:
        if self._shown is not None and self._shown[-1] != self._width():
            self.refresh(recompose=True)

    def _cost(self, binding: Binding) -> int:
        """Cells a key takes: its key (padded 1 each side) and its description (1 after)."""
        description = "" if self.compact else binding.description
        return len(self.app.get_key_display(binding)) + 2 + len(description) + 1

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        keys: list[tuple[Binding, bool, str]] = []
        seen: set[str] = set()
        for _node, binding, enabled, tooltip in self.screen.active_bindings.values():
            if binding.show and binding.action not in seen:
                seen.add(binding.action)
                keys.append((binding, enabled, tooltip))
        width = self._width()
        needed = sum(self._cost(b) for b, _, _ in keys)
        palette = self.screen.active_bindings.get(self.app.COMMAND_PALETTE_BINDING)
        if palette is not None and self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE:
            needed += self._cost(palette[1])
        if not width or needed <= width:
            yield from super().compose()
            return
        fit: list[tuple[Binding, bool, str]] = []
        used = 0
        for binding, enabled, tooltip in keys:
            used += self._cost(binding)
            if used > width - MORE_ROOM:
                break
            fit.append((binding, enabled, tooltip))
        self.styles.grid_size_columns = len(fit) + 1
        for binding, enabled, tooltip in fit:
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                binding.description,
                binding.action,
                disabled=not enabled,
                tooltip=tooltip,
            ).data_bind(compact=Footer.compact)
        yield FooterLabel(f"+{len(keys) - len(fit)} more: ? lists all", id="footer-more")

    async def recompose(self) -> None:
        signature = self._signature()
        if signature is not None and signature == self._shown:
            return
        self._shown = signature
        await super().recompose()
        # Textual keeps watchers in an attribute literally named "__watchers" (reactive.py).
        watchers = getattr(self, "__watchers", {}).get("compact")
        if watchers:
            watchers[:] = [(node, callback) for node, callback in watchers if node.is_attached]
