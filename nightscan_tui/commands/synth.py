"""``nightscan synth``: a labelled test call from the project's own generator (no torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nightscan_tui.console_io import out

MAX_SECONDS = 600.0  # ten minutes of 22,050 Hz audio is 25 MB of WAV; more is a typo


def synth(
    species: Annotated[
        str, typer.Argument(help="owl, hawk, sparrow, robin or background.", metavar="SPECIES")
    ],
    out_file: Annotated[
        Path, typer.Option("--out", "-o", help="WAV file to write.", metavar="FILE.wav")
    ],
    seconds: Annotated[
        float, typer.Option("--seconds", help="Clip length in seconds.", metavar="S")
    ] = 2.0,
    seed: Annotated[
        int, typer.Option("--seed", help="Same seed, same clip, on every machine.", metavar="N")
    ] = 0,
) -> None:
    """Write a synthetic night-time call (16-bit PCM WAV, 22,050 Hz) to try `predict` with."""
    from core.errors import ValidationError
    from inference.synthetic import LABELS

    if species not in LABELS:
        raise ValidationError(f"unknown species {species!r}; expected one of {', '.join(LABELS)}")
    if not 0.1 <= seconds <= MAX_SECONDS:
        raise ValidationError(f"--seconds must be between 0.1 and {MAX_SECONDS:g}, got {seconds:g}")
    if out_file.is_dir():
        raise ValidationError(f"--out must be a file, {out_file} is a folder")
    if not out_file.parent.is_dir():
        raise ValidationError(f"folder {out_file.parent} does not exist")

    import numpy as np

    from inference.synthetic import DEFAULT_SAMPLE_RATE, generate_call, write_wav

    clip = generate_call(species, np.random.default_rng(seed), seconds=seconds)
    write_wav(out_file, clip)
    out.print(
        f"wrote {out_file} ({species}, {seconds:g} s at {DEFAULT_SAMPLE_RATE:,} Hz, seed {seed})",
        highlight=False,
        soft_wrap=True,
    )
