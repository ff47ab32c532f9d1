"""Report pictures as PNG bytes, drawn on bare matplotlib Figures: no pyplot state, so
nothing global to close and safe beside other threads (a serving replica's, a Ray task's)."""

from __future__ import annotations

import io

from matplotlib.figure import Figure


def png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=100)
    return buffer.getvalue()
