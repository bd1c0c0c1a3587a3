"""Textual's footer, rebuilt only when what it shows changes, and without its leak.

Textual's ``Footer`` recomposes (a dozen new key widgets) on every binding refresh, which in this
console means on every cursor move. That churn was most of the console's cyclic garbage, and the
collector's passes over it stalled key presses (benchmarks/console_bench.py). Here a rebuild
happens only when the shown keys, their labels or their enabled state differ from the last one.

Each rebuild also binds its new keys to the footer's ``compact`` reactive, and Textual keeps a
watcher entry per key until ``compact`` changes, which here it never does
(Textualize/textual#6666, open in Textual 8.2): the detached keys piled up by the thousand.
Entries of detached keys are pruned after each rebuild.
"""

from __future__ import annotations

from typing import Any

from textual.widgets import Footer


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
        return shown, self.compact, self.show_command_palette

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
